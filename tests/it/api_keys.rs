//! API keys against the real PostgreSQL: the whole lifecycle (create, use, each right, wildcards,
//! expiry, deactivation, revocation, client binding), enforcement settings, per-key rate limits,
//! propagation between two instances, the CLI, and every admin route's bad input.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A server enforcing keys, with clients `default` and `second` on `db`, and `logging` migrated
/// at start.
fn yaml(db: &TestDb, logging: &TestDb, extra: &str) -> String {
    config_yaml(
        &db.uri,
        "",
        &format!(
            "logging:\n  uri: {}\napi_keys:\n  enforce: true\n{extra}",
            logging.uri
        ),
    ) + &format!("  second:\n    uri: {}\n", db.uri)
}

/// Calls `path` on `client` presenting `key` (if any) as a bearer token.
async fn keyed(
    srv: &TestServer,
    key: Option<&str>,
    client: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = srv
        .http
        .post(srv.url(path))
        .header("X-Athena-Client", client)
        .json(&body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    read(req.send().await.unwrap()).await
}

fn fetch(table: &str) -> Value {
    json!({"table_name": table, "limit": 1})
}

/// Fetches one row of `table` from `client` presenting `key`.
async fn fetch_as(
    srv: &TestServer,
    key: Option<&str>,
    client: &str,
    table: &str,
) -> (StatusCode, Value) {
    keyed(srv, key, client, "/gateway/fetch", fetch(table)).await
}

#[track_caller]
fn ok(res: &(StatusCode, Value)) {
    assert_eq!(res.0, StatusCode::OK, "{}", res.1);
}

#[track_caller]
fn forbidden(res: &(StatusCode, Value), right: &str) {
    assert_error(res, 403, "forbidden");
    assert!(
        res.1["error"].as_str().unwrap().contains(right),
        "the error should name {right}: {}",
        res.1
    );
}

#[tokio::test]
async fn a_key_gets_exactly_its_rights_until_it_is_revoked() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging, "")).await;

    assert_error(
        &fetch_as(&srv, None, "default", "users").await,
        401,
        "missing_api_key",
    );
    // A key in the query string is never read; the answer says where to put it.
    let in_query = read(
        srv.http
            .post(srv.url("/gateway/fetch?api_key=ath_0000000000000000.secret"))
            .header("X-Athena-Client", "default")
            .json(&json!({"table_name": "users"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&in_query, 401, "api_key_in_query");
    let (key, record) = create_key(
        &srv,
        json!({"name": "reader", "rights": ["users.read"], "description": "tests"}),
    )
    .await;
    for bad in [
        "nonsense",
        "ath_0000000000000000.secret",
        "ath_.x",
        &format!("{}x", &key[..key.len() - 1]),
    ] {
        assert_error(
            &fetch_as(&srv, Some(bad), "default", "users").await,
            401,
            "invalid_api_key",
        );
    }
    assert!(key.starts_with("ath_"), "{key}");
    assert_eq!(record["rights"], json!(["users.read"]));
    assert!(record.get("key_hash").is_none() && record.get("key_salt").is_none());
    let id = record["id"].as_str().unwrap().to_string();

    // Only a salted hash is stored.
    let secret = key.split_once('.').unwrap().1;
    let stored = logging
        .scalar("SELECT key_hash || key_salt FROM api_keys")
        .await
        .unwrap();
    assert!(!stored.contains(secret));

    // Every header form carries the key.
    for header in ["authorization", "apikey", "x-api-key", "x-athena-key"] {
        let value = if header == "authorization" {
            format!("Bearer {key}")
        } else {
            key.clone()
        };
        let r = srv
            .http
            .post(srv.url("/gateway/fetch"))
            .header("X-Athena-Client", "default")
            .header(header, value)
            .json(&fetch("users"))
            .send()
            .await
            .unwrap();
        ok(&read(r).await);
    }
    let k = Some(key.as_str());
    forbidden(&fetch_as(&srv, k, "default", "orders").await, "orders.read");
    forbidden(
        &fetch_as(&srv, k, "default", "other.things").await,
        "other.things.read",
    );
    let insert = json!({"table_name": "users", "insert_body": {"email": "k@example.com"}});
    forbidden(
        &keyed(&srv, k, "default", "/gateway/insert", insert.clone()).await,
        "users.write",
    );
    let sql = json!({"query": "SELECT 1 AS one"});
    forbidden(
        &keyed(&srv, k, "default", "/gateway/query", sql.clone()).await,
        "gateway.query",
    );
    // The refused insert wrote nothing.
    assert_eq!(
        db.scalar("SELECT count(*) FROM users WHERE email = 'k@example.com'")
            .await
            .unwrap(),
        "0"
    );

    // Wildcards: every table's read, and writes on users.
    let (s, v) = admin(
        &srv,
        Method::PATCH,
        &format!("/admin/api-keys/{id}"),
        Some(json!({"rights": ["*.read", "users.write"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["data"]["record"]["rights"],
        json!(["*.read", "users.write"])
    );
    ok(&fetch_as(&srv, k, "default", "orders").await);
    ok(&fetch_as(&srv, k, "default", "other.things").await);
    ok(&keyed(&srv, k, "default", "/gateway/insert", insert).await);
    let delete = json!({"table_name": "users", "conditions": [{"eq_column": "email", "eq_value": "k@example.com"}]});
    forbidden(
        &keyed(&srv, k, "default", "/gateway/delete", delete.clone()).await,
        "users.delete",
    );
    forbidden(
        &keyed(&srv, k, "default", "/gateway/query", sql.clone()).await,
        "gateway.query",
    );

    // users.* covers delete; gateway.query opens both raw SQL routes.
    let (s, v) = admin(
        &srv,
        Method::PATCH,
        &format!("/admin/api-keys/{id}"),
        Some(json!({"rights": ["users.*", "gateway.query"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    ok(&keyed(&srv, k, "default", "/gateway/delete", delete).await);
    ok(&keyed(&srv, k, "default", "/gateway/query", sql.clone()).await);
    ok(&keyed(
        &srv,
        k,
        "default",
        "/query/sql",
        json!({"query": "SELECT 1", "driver": "postgresql", "db_name": "default"}),
    )
    .await);
    forbidden(&fetch_as(&srv, k, "default", "orders").await, "orders.read");

    // Deactivated, then active again.
    admin(
        &srv,
        Method::PATCH,
        &format!("/admin/api-keys/{id}"),
        Some(json!({"is_active": false})),
    )
    .await;
    assert_error(
        &fetch_as(&srv, k, "default", "users").await,
        401,
        "invalid_api_key",
    );
    admin(
        &srv,
        Method::PATCH,
        &format!("/admin/api-keys/{id}"),
        Some(json!({"is_active": true})),
    )
    .await;
    ok(&fetch_as(&srv, k, "default", "users").await);

    // Revoked: refused by the very next request, gone from the listing, kept for the audit.
    let (s, v) = admin(&srv, Method::DELETE, &format!("/admin/api-keys/{id}"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_error(
        &fetch_as(&srv, k, "default", "users").await,
        401,
        "invalid_api_key",
    );
    let (_, v) = admin(&srv, Method::GET, "/admin/api-keys", None).await;
    assert_eq!(v["data"]["api_keys"], json!([]));
    let (_, v) = admin(
        &srv,
        Method::GET,
        "/admin/api-keys?include_revoked=true",
        None,
    )
    .await;
    assert!(v["data"]["api_keys"][0]["revoked_at"].is_string(), "{v}");
    let (s, v) = admin(&srv, Method::DELETE, &format!("/admin/api-keys/{id}"), None).await;
    assert_error(&(s, v), 404, "unknown_api_key");
}

#[tokio::test]
async fn expired_keys_stop_working_at_their_expiry() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging, "")).await;
    let (past, _) = create_key(
        &srv,
        json!({"name": "old", "rights": ["*"], "expires_at": "2020-01-01T00:00:00Z"}),
    )
    .await;
    let res = fetch_as(&srv, Some(&past), "default", "users").await;
    assert_error(&res, 401, "invalid_api_key");
    assert!(
        res.1["error"].as_str().unwrap().contains("expired"),
        "{}",
        res.1
    );

    let soon = logging
        .scalar("SELECT to_char((now() + interval '2 seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
        .await
        .unwrap();
    let (key, record) = create_key(
        &srv,
        json!({"name": "brief", "rights": ["*"], "expires_at": soon}),
    )
    .await;
    assert!(record["expires_at"].is_string(), "{record}");
    ok(&fetch_as(&srv, Some(&key), "default", "users").await);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_error(
        &fetch_as(&srv, Some(&key), "default", "users").await,
        401,
        "invalid_api_key",
    );
}

#[tokio::test]
async fn a_key_bound_to_a_client_is_refused_for_every_other() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging, "")).await;
    let (key, record) = create_key(
        &srv,
        json!({"name": "bound", "rights": ["*"], "client_name": "second"}),
    )
    .await;
    assert_eq!(record["client_name"], "second");
    ok(&fetch_as(&srv, Some(&key), "second", "users").await);
    let res = fetch_as(&srv, Some(&key), "default", "users").await;
    forbidden(&res, "second");
    // Raw SQL too.
    let res = keyed(
        &srv,
        Some(&key),
        "default",
        "/gateway/query",
        json!({"query": "SELECT 1"}),
    )
    .await;
    assert_error(&res, 403, "forbidden");
}

#[tokio::test]
async fn enforcement_follows_the_global_setting_and_client_overrides() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging, "")).await;
    create_key(&srv, json!({"name": "any", "rights": ["*"]})).await;

    let (s, v) = admin(&srv, Method::GET, "/admin/api-key-config", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["data"]["global"]["enforce_api_keys"], true,
        "seeded from config: {v}"
    );

    let (s, v) = admin(
        &srv,
        Method::PUT,
        "/admin/api-key-config",
        Some(json!({"enforce_api_keys": false})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["global"]["enforce_api_keys"], false);
    ok(&fetch_as(&srv, None, "default", "users").await);
    // A key that is not valid is ignored where keys are not required.
    ok(&fetch_as(&srv, Some("ath_x.y"), "default", "users").await);
    // Raw SQL needs a key whatever the setting.
    assert_error(
        &keyed(
            &srv,
            None,
            "default",
            "/gateway/query",
            json!({"query": "SELECT 1"}),
        )
        .await,
        401,
        "missing_api_key",
    );

    let (s, v) = admin(
        &srv,
        Method::PUT,
        "/admin/api-key-clients/default",
        Some(json!({"enforce_api_keys": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["client"]["client_name"], "default");
    assert_error(
        &fetch_as(&srv, None, "default", "users").await,
        401,
        "missing_api_key",
    );
    ok(&fetch_as(&srv, None, "second", "users").await);
    let (_, v) = admin(&srv, Method::GET, "/admin/api-key-clients", None).await;
    assert_eq!(v["data"]["clients"].as_array().unwrap().len(), 1, "{v}");

    let (s, _) = admin(&srv, Method::DELETE, "/admin/api-key-clients/default", None).await;
    assert_eq!(s, StatusCode::OK);
    ok(&fetch_as(&srv, None, "default", "users").await);
    let res = admin(&srv, Method::DELETE, "/admin/api-key-clients/default", None).await;
    assert_error(&res, 404, "not_found");
    drop(srv);

    // The admin's setting survives a restart, whatever config says.
    let srv = TestServer::start_yaml(&yaml(&db, &logging, "")).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = fetch_as(&srv, None, "default", "users").await;
        if res.0 == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "enforcement came back: {}",
            res.1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging, "")).await;
    let (limited, record) = create_key(
        &srv,
        json!({"name": "slow", "rights": ["*"], "rate_limit_per_minute": 3}),
    )
    .await;
    assert_eq!(record["rate_limit_per_minute"], 3);
    let (other, _) = create_key(&srv, json!({"name": "free", "rights": ["*"]})).await;
    for _ in 0..3 {
        ok(&fetch_as(&srv, Some(&limited), "default", "users").await);
    }
    let r = srv
        .http
        .post(srv.url("/gateway/fetch"))
        .header("X-Athena-Client", "default")
        .bearer_auth(&limited)
        .json(&fetch("users"))
        .send()
        .await
        .unwrap();
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert_error(&read(r).await, 429, "rate_limited");
    // Another key is not affected.
    ok(&fetch_as(&srv, Some(&other), "default", "users").await);
    // Changing another field keeps the bucket: still limited.
    let id = record["id"].as_str().unwrap();
    admin(
        &srv,
        Method::PATCH,
        &format!("/admin/api-keys/{id}"),
        Some(json!({"description": "changed"})),
    )
    .await;
    assert_error(
        &fetch_as(&srv, Some(&limited), "default", "users").await,
        429,
        "rate_limited",
    );
}

#[tokio::test]
async fn keys_minted_on_one_instance_work_on_another_and_revocation_reaches_it_within_2s() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let a = TestServer::start_yaml(&yaml(&db, &logging, "")).await;
    let b = TestServer::start_yaml(&yaml(&db, &logging, "")).await;
    let (key, record) = create_key(&a, json!({"name": "shared", "rights": ["users.read"]})).await;
    let id = record["id"].as_str().unwrap();

    let within = |deadline: Duration| Instant::now() + deadline;
    let until = within(Duration::from_secs(2));
    loop {
        let res = fetch_as(&b, Some(&key), "default", "users").await;
        if res.0 == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < until,
            "instance b never accepted the key: {}",
            res.1
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, _) = admin(&a, Method::DELETE, &format!("/admin/api-keys/{id}"), None).await;
    assert_eq!(s, StatusCode::OK);
    let revoked_at = Instant::now();
    loop {
        let res = fetch_as(&b, Some(&key), "default", "users").await;
        if res.0 == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(2),
            "instance b still accepts a revoked key: {}",
            res.1
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_cli_mints_a_key_the_server_accepts() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let config = yaml(&db, &logging, "");
    let dir = std::env::temp_dir().join(unique_name("athena_cli_keys"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.yaml");
    std::fs::write(&path, &config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_athena_rs"))
        .args(["--config", path.to_str().unwrap(), "keys", "create"])
        .args(["--name", "cli", "--rights", "users.read", "orders.read"])
        .args(["--client", "default", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_str(&stdout).unwrap();
    let key = created["api_key"].as_str().unwrap().to_string();
    assert_eq!(
        created["record"]["rights"],
        json!(["orders.read", "users.read"])
    );

    // Unknown clients and malformed rights are refused with a reason and a failing exit code.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_athena_rs"))
        .args(["--config", path.to_str().unwrap(), "keys", "create"])
        .args(["--name", "bad", "--rights", "users.drop"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("users.drop"));

    let list = std::process::Command::new(env!("CARGO_BIN_EXE_athena_rs"))
        .args(["--config", path.to_str().unwrap(), "keys", "list"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&list.stdout);
    assert!(table.starts_with("ID") && table.contains("cli"), "{table}");
    assert!(
        !table.contains(key.split_once('.').unwrap().1),
        "secrets are never listed"
    );
    std::fs::remove_dir_all(&dir).ok();

    let srv = TestServer::start_yaml(&config).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = fetch_as(&srv, Some(&key), "default", "orders").await;
        if res.0 == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "{}", res.1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn admin_key_routes_refuse_bad_input_with_stable_codes() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging, "")).await;
    let (_, record) = create_key(&srv, json!({"name": "k", "rights": ["users.read"]})).await;
    let id = record["id"].as_str().unwrap().to_string();
    let key_path = format!("/admin/api-keys/{id}");
    let cases: Vec<(Method, &str, Option<Value>, u16, &str)> = vec![
        (
            Method::POST,
            "/admin/api-keys",
            Some(json!({"rights": ["users.read"]})),
            400,
            "missing_field",
        ),
        (
            Method::POST,
            "/admin/api-keys",
            Some(json!({"name": "x"})),
            400,
            "missing_field",
        ),
        (
            Method::POST,
            "/admin/api-keys",
            Some(json!({"name": 1, "rights": []})),
            400,
            "invalid_field",
        ),
        (
            Method::POST,
            "/admin/api-keys",
            Some(json!({"name": "x", "rights": "users.read"})),
            400,
            "invalid_field",
        ),
        (
            Method::POST,
            "/admin/api-keys",
            Some(json!({"name": "x", "rights": [1]})),
            400,
            "invalid_field",
        ),
        (
            Method::POST,
            "/admin/api-keys",
            Some(json!({"name": "x", "rights": ["users.drop"]})),
            400,
            "invalid_field",
        ),
        (
            Method::POST,
            "/admin/api-keys",
            Some(json!({"name": "x", "rights": ["users'; --.read"]})),
            400,
            "invalid_field",
        ),
        (
            Method::POST,
            "/admin/api-keys",
            Some(json!({"name": "", "rights": []})),
            400,
            "invalid_field",
        ),
        (
            Method::POST,
            "/admin/api-keys",
            Some(json!({"name": "x", "rights": [], "expires_at": "tomorrow"})),
            400,
            "invalid_field",
        ),
        (
            Method::POST,
            "/admin/api-keys",
            Some(json!({"name": "x", "rights": [], "rate_limit_per_minute": 0})),
            400,
            "invalid_field",
        ),
        (
            Method::POST,
            "/admin/api-keys",
            Some(json!({"name": "x", "rights": [], "rate_limit_per_minute": "5"})),
            400,
            "invalid_field",
        ),
        (
            Method::POST,
            "/admin/api-keys",
            Some(json!({"name": "x", "rights": [], "client_name": "nope"})),
            404,
            "unknown_client",
        ),
        (
            Method::POST,
            "/admin/api-keys",
            Some(json!({"name": "x", "rights": [], "key_hash": "00"})),
            400,
            "invalid_field",
        ),
        (
            Method::POST,
            "/admin/api-keys",
            Some(json!([1])),
            400,
            "invalid_body",
        ),
        (
            Method::PATCH,
            "/admin/api-keys/not-a-uuid",
            Some(json!({"name": "y"})),
            400,
            "invalid_field",
        ),
        (
            Method::PATCH,
            "/admin/api-keys/00000000-0000-0000-0000-000000000000",
            Some(json!({"name": "y"})),
            404,
            "unknown_api_key",
        ),
        (
            Method::PATCH,
            &key_path,
            Some(json!({})),
            400,
            "missing_field",
        ),
        (
            Method::PATCH,
            &key_path,
            Some(json!({"name": null})),
            400,
            "invalid_field",
        ),
        (
            Method::PATCH,
            &key_path,
            Some(json!({"is_active": "yes"})),
            400,
            "invalid_field",
        ),
        (
            Method::PATCH,
            &key_path,
            Some(json!({"client_name": "nope"})),
            404,
            "unknown_client",
        ),
        (
            Method::DELETE,
            "/admin/api-keys/00000000-0000-0000-0000-000000000000",
            None,
            404,
            "unknown_api_key",
        ),
        (
            Method::PUT,
            "/admin/api-keys",
            None,
            405,
            "method_not_allowed",
        ),
        (
            Method::POST,
            "/admin/api-key-rights",
            Some(json!({"name": "users.read"})),
            409,
            "unique_violation",
        ),
        (
            Method::POST,
            "/admin/api-key-rights",
            Some(json!({"name": "nonsense"})),
            400,
            "invalid_field",
        ),
        (
            Method::POST,
            "/admin/api-key-rights",
            Some(json!({})),
            400,
            "missing_field",
        ),
        (
            Method::PATCH,
            "/admin/api-key-rights/no.such",
            Some(json!({"description": "d"})),
            404,
            "unknown_right",
        ),
        (
            Method::DELETE,
            "/admin/api-key-rights/99999",
            None,
            404,
            "unknown_right",
        ),
        (
            Method::PUT,
            "/admin/api-key-config",
            Some(json!({"enforce_api_keys": "no"})),
            400,
            "invalid_field",
        ),
        (
            Method::PUT,
            "/admin/api-key-config",
            Some(json!({})),
            400,
            "missing_field",
        ),
        (
            Method::PUT,
            "/admin/api-key-config",
            Some(json!({"enforce": false})),
            400,
            "invalid_field",
        ),
        (
            Method::PUT,
            "/admin/api-key-clients/nope",
            Some(json!({"enforce_api_keys": true})),
            404,
            "unknown_client",
        ),
        (
            Method::DELETE,
            "/admin/api-key-clients/nope",
            None,
            404,
            "not_found",
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, status, code) in cases {
        let (s, v) = admin(&srv, method.clone(), path, body.clone()).await;
        if s.as_u16() != status || v["code"] != code {
            failures.push(format!(
                "{method} {path} {body:?}: expected {status} {code}, got {s} {v}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Rights: create, rename (keys holding it follow), delete (keys lose it).
    let (s, v) = admin(
        &srv,
        Method::POST,
        "/admin/api-key-rights",
        Some(json!({"name": "orders.read", "description": "read orders"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = admin(
        &srv,
        Method::PATCH,
        "/admin/api-key-rights/users.read",
        Some(json!({"name": "users.*"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = admin(&srv, Method::GET, "/admin/api-keys", None).await;
    assert_eq!(v["data"]["api_keys"][0]["rights"], json!(["users.*"]));
    let (s, _) = admin(&srv, Method::DELETE, "/admin/api-key-rights/users.*", None).await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = admin(&srv, Method::GET, "/admin/api-keys", None).await;
    assert_eq!(v["data"]["api_keys"][0]["rights"], json!([]));
    let (_, v) = admin(&srv, Method::GET, "/admin/api-key-rights", None).await;
    assert_eq!(v["data"]["rights"][0]["name"], "orders.read", "{v}");

    // Without the admin key nothing is listed or changed.
    let r = srv
        .http
        .get(srv.url("/admin/api-keys"))
        .send()
        .await
        .unwrap();
    assert_error(&read(r).await, 401, "missing_api_key");
    let r = srv
        .http
        .post(srv.url("/admin/api-keys"))
        .bearer_auth("ath_x.y")
        .json(&json!({"name": "x", "rights": ["*"]}))
        .send()
        .await
        .unwrap();
    assert_error(&read(r).await, 401, "invalid_api_key");
}

#[tokio::test]
async fn every_decision_is_written_to_the_auth_log_with_its_reason() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging, "")).await;
    let (key, record) =
        create_key(&srv, json!({"name": "audited", "rights": ["users.read"]})).await;
    let public_id = record["public_id"].as_str().unwrap().to_string();
    let wrong_secret = format!("ath_{public_id}.nope");

    let denied = fetch_as(&srv, None, "default", "users").await;
    assert_error(&denied, 401, "missing_api_key");
    let wrong = fetch_as(&srv, Some(&wrong_secret), "default", "users").await;
    assert_error(&wrong, 401, "invalid_api_key");
    ok(&fetch_as(&srv, Some(&key), "default", "users").await);
    let lacking = fetch_as(&srv, Some(&key), "default", "orders").await;
    assert_error(&lacking, 403, "forbidden");
    let sql = keyed(
        &srv,
        Some(&key),
        "default",
        "/gateway/query",
        json!({"query": "SELECT 1"}),
    )
    .await;
    assert_error(&sql, 403, "forbidden");
    srv.actors.stats.flush().await.unwrap();

    let c = logging.client().await;
    let rows = c
        .query(
            "SELECT request_id, api_key_public_id, api_key_id IS NOT NULL, client_name, \
             required_rights::text, granted_rights::text, authenticated, authorized, enforced, \
             failure_reason FROM api_key_auth_log ORDER BY created_at",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{:?} {} {:?} {:?} {:?} {} {} {} {:?}",
                r.get::<_, Option<String>>(1).map(|p| p == public_id),
                r.get::<_, bool>(2),
                r.get::<_, Option<String>>(3),
                r.get::<_, Option<String>>(4),
                r.get::<_, Option<String>>(5),
                r.get::<_, bool>(6),
                r.get::<_, bool>(7),
                r.get::<_, bool>(8),
                r.get::<_, Option<String>>(9),
            )
        })
        .collect();
    let granted = r#"Some("{users.read}")"#;
    assert_eq!(
        got,
        vec![
            r#"None false Some("default") Some("{}") None false false true Some("missing_api_key")"#.to_string(),
            r#"Some(true) false Some("default") Some("{}") None false false true Some("invalid_api_key_secret")"#.to_string(),
            // An allowed request held what it required; the key's rights go with refusals only.
            r#"Some(true) true Some("default") Some("{users.read}") None true true true None"#.to_string(),
            format!(r#"Some(true) true Some("default") Some("{{orders.read}}") {granted} true false true Some("missing_api_key_rights")"#),
            format!(r#"Some(true) true Some("default") Some("{{gateway.query}}") {granted} true false true Some("missing_api_key_rights")"#),
        ],
        "{got:#?}"
    );
    // The log row of a refusal carries the id the caller was given.
    assert_eq!(
        rows[0].get::<_, Option<String>>(0).as_deref(),
        denied.1["trace_id"].as_str()
    );
    // Secrets never reach the log.
    let text = logging
        .scalar("SELECT string_agg(t::text, ' ') FROM api_key_auth_log t")
        .await
        .unwrap();
    assert!(!text.contains(key.split_once('.').unwrap().1));
    // The key's last use is recorded.
    assert_eq!(
        logging
            .scalar("SELECT last_used_at IS NOT NULL FROM api_keys")
            .await
            .unwrap(),
        "t"
    );
}

#[tokio::test]
async fn before_keys_are_loaded_a_presented_key_waits_and_key_routes_say_why() {
    let db = TestDb::create(SEED).await;
    // A logging database nobody has provisioned: no keys can be loaded from it.
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&config_yaml(
        &db.uri,
        "",
        &format!(
            "logging:\n  uri: {}\n  migrate_at_start: false\napi_keys:\n  enforce: true\n",
            logging.uri
        ),
    ))
    .await;
    let r = srv
        .http
        .post(srv.url("/gateway/fetch"))
        .header("X-Athena-Client", "default")
        .bearer_auth("ath_0123456789abcdef.secret")
        .json(&fetch("users"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("retry-after"));
    assert_error(&read(r).await, 503, "not_ready");
    // Whatever the store's state: no key is a 401, a malformed key is a 401, the admin key works.
    assert_error(
        &fetch_as(&srv, None, "default", "users").await,
        401,
        "missing_api_key",
    );
    assert_error(
        &fetch_as(&srv, Some("not-a-key"), "default", "users").await,
        401,
        "invalid_api_key",
    );
    ok(&fetch_as(&srv, Some(ADMIN_KEY), "default", "users").await);
    for (method, path, body) in [
        (Method::GET, "/admin/api-keys", None),
        (
            Method::POST,
            "/admin/api-keys",
            Some(json!({"name": "k", "rights": ["*"]})),
        ),
        (Method::GET, "/admin/api-key-rights", None),
        (Method::GET, "/admin/api-key-config", None),
    ] {
        let res = admin(&srv, method.clone(), path, body).await;
        assert_error(&res, 503, "backend_unavailable");
        assert!(
            res.1["error"].as_str().unwrap().contains("not provisioned"),
            "{method} {path}: {}",
            res.1
        );
    }
}
