//! Provisioning the logging database: `POST /admin/provision`, `GET /admin/provision/status` and
//! `athena_rs provision`.

use crate::common;

use std::process::Command;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const TABLE_COUNT: usize = athena_actors::provision::TABLES.len();

/// How many migrations there are, as `count(*)` prints it.
fn migration_count() -> String {
    athena_actors::provision::MIGRATIONS.len().to_string()
}

/// The names the provisioning report uses, in order.
fn migration_names() -> Vec<String> {
    athena_actors::provision::MIGRATIONS
        .iter()
        .map(|m| format!("{:04}_{}", m.version, m.name))
        .collect()
}

/// A server whose logging database is `logging_uri` and whose `default` client is `db`.
async fn server(db: &TestDb, logging_uri: &str) -> TestServer {
    TestServer::start_yaml(&config_yaml(
        &db.uri,
        "",
        &format!("logging:\n  uri: {logging_uri}\n  migrate_at_start: false\n"),
    ))
    .await
}

async fn admin_post(srv: &TestServer, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = srv
        .http
        .post(srv.url("/admin/provision"))
        .bearer_auth(ADMIN_KEY);
    if let Some(b) = body {
        req = req.json(&b);
    }
    read(req.send().await.unwrap()).await
}

async fn admin_status(srv: &TestServer, query: &str) -> (StatusCode, Value) {
    read(
        srv.http
            .get(srv.url(&format!("/admin/provision/status{query}")))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn provisioning_applies_each_migration_once_and_reports_the_tables() {
    let db = TestDb::create("").await;
    let logging = TestDb::create("").await;
    let srv = server(&db, &logging.uri).await;
    let (s, v) = admin_status(&srv, "").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["provisioned"], false);
    assert_eq!(v["data"]["missing"].as_array().unwrap().len(), TABLE_COUNT);
    let (s, v) = admin_post(&srv, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(strings(&v["data"]["applied"]), migration_names());
    assert_eq!(v["data"]["present"].as_array().unwrap().len(), TABLE_COUNT);
    assert_eq!(v["data"]["missing"], json!([]));
    let (_, v) = admin_post(&srv, Some(json!({}))).await;
    assert_eq!(v["data"]["applied"], json!([]));
    assert_eq!(
        v["data"]["already_applied"].as_array().unwrap().len(),
        athena_actors::provision::MIGRATIONS.len()
    );
    let (_, v) = admin_status(&srv, "").await;
    assert_eq!(v["data"]["provisioned"], true);
    let versions: Vec<i32> = athena_actors::provision::MIGRATIONS
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(v["data"]["applied_versions"], json!(versions));
    assert_eq!(
        logging
            .scalar("SELECT count(*) FROM athena_migrations")
            .await
            .unwrap(),
        migration_count()
    );
    // Enforcement is seeded by the first server to start, from its config.
    assert_eq!(
        logging
            .scalar("SELECT count(*) FROM api_key_config")
            .await
            .unwrap(),
        "0"
    );
}

#[tokio::test]
async fn concurrent_provisioning_applies_each_migration_exactly_once() {
    let db = TestDb::create("").await;
    let target = TestDb::create("").await;
    let srv = server(&db, &db.uri).await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let http = srv.http.clone();
        let url = srv.url("/admin/provision");
        let uri = target.uri.clone();
        tasks.push(tokio::spawn(async move {
            read(
                http.post(url)
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({"uri": uri}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }));
    }
    let mut applied = 0;
    for t in tasks {
        let (s, v) = t.await.unwrap();
        assert_eq!(s, 200, "{v}");
        applied += v["data"]["applied"].as_array().unwrap().len();
    }
    assert_eq!(
        applied,
        athena_actors::provision::MIGRATIONS.len(),
        "each migration is applied by exactly one caller"
    );
    assert_eq!(
        target
            .scalar("SELECT count(*) FROM athena_migrations")
            .await
            .unwrap(),
        migration_count()
    );
}

#[tokio::test]
async fn a_missing_logging_database_is_created() {
    let db = TestDb::create("").await;
    let name = unique_name("athena_t_logging");
    let uri = format!("{PG_BASE}/{name}");
    let srv = server(&db, &uri).await;
    let (s, v) = admin_post(&srv, None).await;
    // Registered for clean-up whatever the outcome.
    let created = TestDb { name, uri };
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["created_database"], true);
    assert_eq!(
        created
            .scalar("SELECT count(*) FROM athena_migrations")
            .await
            .unwrap(),
        migration_count()
    );
}

#[tokio::test]
async fn provisioning_a_client_by_name_and_bad_input() {
    let db = TestDb::create("").await;
    let srv = server(&db, &db.uri).await;
    let (s, v) = admin_status(&srv, "?client_name=default").await;
    assert_eq!(
        (s.as_u16(), &v["data"]["provisioned"]),
        (200, &json!(false))
    );
    let (s, v) = admin_post(&srv, Some(json!({"client_name": "default"}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(strings(&v["data"]["applied"]), migration_names());
    assert_error(
        &admin_post(&srv, Some(json!({"client_name": "nope"}))).await,
        404,
        "unknown_client",
    );
    assert_error(
        &admin_status(&srv, "?client_name=nope").await,
        404,
        "unknown_client",
    );
    assert_error(
        &admin_post(&srv, Some(json!({"uri": "not a uri ::"}))).await,
        400,
        "invalid_field",
    );
    assert_error(
        &admin_post(&srv, Some(json!({"uri": db.uri, "client_name": "default"}))).await,
        400,
        "invalid_field",
    );
    assert_error(
        &admin_post(&srv, Some(json!({"uri": 5}))).await,
        400,
        "invalid_field",
    );
    assert_error(
        &admin_post(&srv, Some(json!([1]))).await,
        400,
        "invalid_body",
    );
    let r = admin_post(
        &srv,
        Some(json!({"uri": "postgres://postgres:pw@127.0.0.1:1/x"})),
    )
    .await;
    assert_error(&r, 503, "backend_unavailable");
    assert!(!r.1.to_string().contains(":pw@"), "the URI is never echoed");
    let r = read(
        srv.http
            .post(srv.url("/admin/provision"))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 401, "missing_api_key");
    let r = read(
        srv.http
            .get(srv.url("/admin/provision/status"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 401, "invalid_api_key");
}

#[test]
fn the_cli_provisions_a_uri_and_is_idempotent() {
    let name = unique_name("athena_t_cli");
    let uri = format!("{PG_BASE}/{name}");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_athena_rs"))
            .args(["provision", "--uri", &uri])
            .output()
            .unwrap()
    };
    let first = run();
    let _cleanup = TestDb {
        name: name.clone(),
        uri: uri.clone(),
    };
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(out.contains(&format!("created database {name}")), "{out}");
    assert!(
        out.contains("applied         0004_append_only_logs"),
        "{out}"
    );
    let second = run();
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success());
    assert!(
        out.contains("already applied 0001_client_catalog") && !out.contains("created"),
        "{out}"
    );
}

#[tokio::test]
async fn the_logging_database_is_created_and_migrated_at_start_once_it_answers() {
    let db = TestDb::create("").await;
    let name = unique_name("athena_t_start");
    let uri = format!("{PG_BASE}/{name}");
    let logging_db = TestDb {
        name,
        uri: uri.clone(),
    };
    // Two instances start at once against a logging database that does not exist yet.
    let yaml = config_yaml(&db.uri, "", &format!("logging:\n  uri: {uri}\n"));
    let (a, b) = tokio::join!(TestServer::start_yaml(&yaml), TestServer::start_yaml(&yaml));
    for srv in [&a, &b] {
        let mut state = Value::Null;
        for _ in 0..100 {
            let (_, v) = read(srv.http.get(srv.url("/ready")).send().await.unwrap()).await;
            state = v["data"]["logging"]["state"].clone();
            if state == "ready" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(state, "ready");
    }
    assert_eq!(
        logging_db
            .scalar("SELECT count(*) FROM athena_migrations")
            .await
            .unwrap(),
        migration_count()
    );
    drop((a, b));
}

#[tokio::test]
async fn an_unreachable_logging_database_does_not_stop_the_gateway() {
    let db = TestDb::create("CREATE TABLE t (id int);").await;
    let yaml = config_yaml(
        &db.uri,
        "",
        "logging:\n  uri: postgres://postgres:secret@127.0.0.1:1/athena_logging\n",
    );
    let srv = TestServer::start_yaml(&yaml).await;
    assert_eq!(
        rows(&srv.post("/gateway/fetch", json!({"table_name": "t"})).await).len(),
        0
    );
    let (_, v) = read(srv.http.get(srv.url("/")).send().await.unwrap()).await;
    assert_eq!(v["data"]["logging"]["state"], "pending");
    assert!(v["data"]["logging"]["last_error"].is_string());
    assert!(
        !v.to_string().contains("secret"),
        "no password in the health report"
    );
}

#[tokio::test]
async fn an_edited_migration_is_refused_and_nothing_is_applied() {
    let db = TestDb::create("").await;
    let srv = server(&db, &db.uri).await;
    let (s, _) = admin_post(&srv, None).await;
    assert_eq!(s, 200);
    db.execute("UPDATE athena_migrations SET checksum = 'edited' WHERE version = 2; DELETE FROM athena_migrations WHERE version >= 3;")
        .await;
    let (s, v) = admin_post(&srv, None).await;
    assert_error(&(s, v.clone()), 400, "invalid_query");
    assert!(
        v["error"].as_str().unwrap().contains("different contents"),
        "{v}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM athena_migrations")
            .await
            .unwrap(),
        "2",
        "migration 3 was not applied after the refusal"
    );
}

#[tokio::test]
async fn rows_of_the_separate_operation_and_auth_logs_move_onto_their_requests() {
    let db = TestDb::create("").await;
    // A database as the first four migrations left it, with rows in all three logs.
    for m in &athena_actors::provision::MIGRATIONS[..4] {
        db.execute(m.sql).await;
    }
    db.execute(
        "INSERT INTO gateway_request_log (request_id, client, method, path, status_code, api_key_public_id) \
           VALUES ('r1', 'default', 'POST', '/gateway/fetch', 200, 'pub1'), \
                  ('r2', 'default', 'POST', '/gateway/fetch', 401, NULL); \
         INSERT INTO gateway_operation_log (request_id, operation, table_name, client, method, path, status_code, row_count, error, message) \
           VALUES ('r1', 'fetch', 'users', 'default', 'POST', '/gateway/fetch', 200, 3, false, NULL), \
                  ('r3', 'insert', 'users', 'default', 'PUT', '/gateway/insert', 422, NULL, true, 'check_violation'); \
         INSERT INTO api_key_auth_log (request_id, api_key_id, api_key_public_id, client_name, method, path, required_rights, granted_rights, authenticated, authorized, enforced, failure_reason) \
           VALUES ('r1', 7, 'pub1', 'default', 'POST', '/gateway/fetch', '{users.read}', '{*}', true, true, true, NULL), \
                  ('r2', NULL, NULL, 'default', 'POST', '/gateway/fetch', '{}', '{}', false, false, true, 'missing_api_key');",
    )
    .await;
    let client = db.client().await;
    let report = athena_actors::provision::apply(&client).await.unwrap();
    assert!(
        report
            .applied
            .contains(&"0005_one_log_row_per_request".to_string()),
        "{report:?}"
    );

    let rows = |sql: &'static str| {
        let db = &db;
        async move { db.scalar(sql).await.unwrap_or_default() }
    };
    assert_eq!(
        rows("SELECT string_agg(concat_ws(':', request_id, status_code, operation, table_name, row_count, api_key_id, api_key_authorized, api_key_auth_reason), ' ' ORDER BY request_id) FROM gateway_request_log").await,
        "r1:200:fetch:users:3:7:t r2:401:f:missing_api_key r3:422:insert:users",
        "one row per request, the orphan operation kept"
    );
    assert_eq!(
        rows("SELECT string_agg(concat_ws(':', request_id, operation, error, message), ' ' ORDER BY request_id) FROM gateway_operation_log").await,
        "r1:fetch:f r3:insert:t:check_violation"
    );
    assert_eq!(
        rows("SELECT string_agg(concat_ws(':', request_id, client_name, authenticated, authorized, enforced, failure_reason, required_rights::text, granted_rights::text), ' ' ORDER BY request_id) FROM api_key_auth_log").await,
        "r1:default:t:t:t:{users.read}:{*} r2:default:f:f:t:missing_api_key:{}:{}"
    );
    // Applying again changes nothing.
    let again = athena_actors::provision::apply(&client).await.unwrap();
    assert!(again.applied.is_empty(), "{again:?}");
    assert_eq!(rows("SELECT count(*) FROM gateway_request_log").await, "3");
}

#[tokio::test]
async fn log_rows_move_into_requests_and_shapes_and_read_back_the_same() {
    let db = TestDb::create("").await;
    // A database as the first seven migrations left it, with rows of three shapes (one repeated,
    // one telling an empty user agent from none) and every per-request column set somewhere.
    let client = db.client().await;
    athena_actors::provision::apply_through(&client, 7)
        .await
        .unwrap();
    db.execute(
        "INSERT INTO gateway_request_log (created_at, request_id, client, method, path, status_code, \
             duration_ms, api_key_public_id, user_id, company_id, organization_id, remote_addr, \
             user_agent, cached, operation, table_name, row_count, message, details, api_key_id, \
             api_key_enforced, api_key_authenticated, api_key_authorized, api_key_auth_reason, \
             required_rights, granted_rights) VALUES \
           ('2026-01-01T00:00:01Z', 'r1', 'default', 'POST', '/gateway/fetch', 200, 1.5, 'pub1', 'u1', 'c1', 'o1', \
            '127.0.0.1', 'curl', false, 'fetch', 'users', 3, NULL, NULL, 7, true, true, true, NULL, '{users.read}', NULL), \
           ('2026-01-01T00:00:02Z', 'r2', 'default', 'POST', '/gateway/fetch', 500, 2.5, 'pub1', 'u2', NULL, NULL, \
            '127.0.0.1', 'curl', false, 'fetch', 'users', NULL, 'pool_timeout', '{\"a\": 1}', 7, true, true, true, NULL, '{users.read}', NULL), \
           ('2026-01-01T00:00:03Z', 'r3', 'default', 'POST', '/gateway/fetch', 200, 0.5, 'pub1', NULL, NULL, NULL, \
            '127.0.0.1', '', false, 'fetch', 'users', 1, NULL, NULL, 7, true, true, true, NULL, '{users.read}', NULL), \
           ('2026-01-01T00:00:04Z', 'r4', 'default', 'PUT', '/gateway/insert', 403, 0.1, 'pub1', NULL, NULL, NULL, \
            NULL, NULL, false, 'insert', 'users', NULL, 'forbidden', NULL, 7, true, true, false, 'missing_api_key_rights', '{users.write}', '{users.read}');",
    )
    .await;
    const ALL: &str = "SELECT string_agg(concat_ws('|', id, created_at, request_id, client, method, path, \
        status_code, duration_ms, api_key_public_id, user_id, company_id, organization_id, remote_addr, \
        coalesce(user_agent, '<none>'), cached, operation, table_name, row_count, message, details, \
        api_key_id, api_key_enforced, api_key_authenticated, api_key_authorized, api_key_auth_reason, \
        required_rights::text, granted_rights::text), E'\\n' ORDER BY id) FROM gateway_request_log";
    let before = db.scalar(ALL).await.unwrap();
    let ops = "SELECT string_agg(concat_ws('|', request_id, operation, error, message), ' ' ORDER BY id) FROM gateway_operation_log";
    let auth = "SELECT string_agg(concat_ws('|', request_id, authorized, failure_reason, granted_rights::text), ' ' ORDER BY id) FROM api_key_auth_log";
    let (ops_before, auth_before) = (db.scalar(ops).await, db.scalar(auth).await);

    let report = athena_actors::provision::apply(&client).await.unwrap();
    assert_eq!(report.applied[0], "0008_request_shapes");
    assert_eq!(
        db.scalar(ALL).await.unwrap(),
        before,
        "the view reads as the table did"
    );
    assert_eq!(db.scalar(ops).await, ops_before);
    assert_eq!(db.scalar(auth).await, auth_before);
    assert_eq!(
        db.scalar("SELECT count(*) FROM gateway_request_shapes WHERE shape_id < 0")
            .await
            .unwrap(),
        "3",
        "one shape per distinct combination"
    );
    assert_eq!(
        db.scalar("SELECT to_regclass('gateway_request_log_moving') IS NULL")
            .await
            .unwrap(),
        "t"
    );
    // New rows continue after the moved ids.
    db.execute("INSERT INTO gateway_requests (request_id, shape_id, status_code) SELECT 'r5', min(shape_id), 200 FROM gateway_request_shapes")
        .await;
    let max_before: i64 = before
        .lines()
        .map(|l| l.split('|').next().unwrap().parse::<i64>().unwrap())
        .max()
        .unwrap();
    let new_id: i64 = db
        .scalar("SELECT id FROM gateway_request_log WHERE request_id = 'r5'")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(new_id > max_before, "{new_id} after {max_before}");
    // Applying again changes nothing.
    let again = athena_actors::provision::apply(&client).await.unwrap();
    assert!(again.applied.is_empty(), "{again:?}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM gateway_request_log")
            .await
            .unwrap(),
        "5"
    );
}
