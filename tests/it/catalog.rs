//! The client catalog: config clients recorded when absent, catalog rows applied at start, and
//! admin edits (freeze, delete) that survive restarts.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn yaml(db: &TestDb, logging: &TestDb) -> String {
    config_yaml(&db.uri, "", &format!("logging:\n  uri: {}\n", logging.uri))
}

/// Like [`yaml`], with a logging database the operator provisions (not migrated at start).
fn yaml_unmigrated(db: &TestDb, logging: &TestDb) -> String {
    config_yaml(
        &db.uri,
        "",
        &format!(
            "logging:\n  uri: {}\n  migrate_at_start: false\n",
            logging.uri
        ),
    )
}

/// Waits until the catalog lists `name` (the registry has read it by then).
async fn wait_listed(srv: &TestServer, name: &str) -> Value {
    for _ in 0..100 {
        let (s, v) = admin(srv, reqwest::Method::GET, "/admin/clients", None).await;
        if s == 200 {
            if let Some(c) = v["data"]["clients"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["client_name"] == name)
            {
                return c.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never appeared in the catalog");
}

/// Polls a fetch on `client` until it answers `status`.
async fn wait_fetch_status(srv: &TestServer, client: &str, status: u16) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let r = srv
            .http
            .post(srv.url("/gateway/fetch"))
            .header("X-Athena-Client", client)
            .json(&json!({"table_name": "t"}))
            .send()
            .await
            .unwrap();
        let (s, v) = read(r).await;
        if s.as_u16() == status {
            return v;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{client} never answered {status}: {last}");
}

const DATA: &str = "CREATE TABLE t (id int); INSERT INTO t VALUES (1);";

#[tokio::test]
async fn config_clients_are_recorded_once_and_a_freeze_survives_restarts() {
    let db = TestDb::create(DATA).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging)).await;
    let row = wait_listed(&srv, "default").await;
    assert_eq!(row["source"], "config");
    assert_eq!(row["runtime"]["state"], "online");
    assert_eq!(row["runtime"]["breaker"]["state"], "closed");
    let (s, v) = admin(
        &srv,
        reqwest::Method::PUT,
        "/admin/clients/default/freeze",
        Some(json!({"is_frozen": true, "reason": "maintenance"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["client"]["is_frozen"], true);
    assert_eq!(v["data"]["client"]["frozen_reason"], "maintenance");
    assert_error(
        &srv.post("/gateway/fetch", json!({"table_name": "t"})).await,
        503,
        "client_frozen",
    );
    drop(srv);

    let srv = TestServer::start_yaml(&yaml(&db, &logging)).await;
    let v = wait_fetch_status(&srv, "default", 503).await;
    assert_eq!(
        v["code"], "client_frozen",
        "the freeze came back from the catalog"
    );
    assert_eq!(
        logging
            .scalar("SELECT count(*) FROM athena_clients")
            .await
            .unwrap(),
        "1"
    );
    let (s, _) = admin(
        &srv,
        reqwest::Method::PUT,
        "/admin/clients/default/freeze",
        Some(json!({"is_frozen": false})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        rows(&srv.post("/gateway/fetch", json!({"table_name": "t"})).await).len(),
        1
    );
}

#[tokio::test]
async fn catalog_clients_join_and_deleted_config_clients_stay_deleted() {
    let db = TestDb::create(DATA).await;
    let other = TestDb::create(DATA).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging)).await;
    wait_listed(&srv, "default").await;
    drop(srv);
    let with_password = other.uri.replace("postgres@", "postgres:s3cret@");
    logging
        .execute(&format!(
            "INSERT INTO athena_clients (client_name, source, pg_uri) VALUES ('extra', 'admin', '{with_password}');
             UPDATE athena_clients SET deleted_at = now() WHERE client_name = 'default';"
        ))
        .await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging)).await;
    let row = wait_listed(&srv, "extra").await;
    assert!(
        row["pg_uri"].as_str().unwrap().contains("postgres:***@"),
        "{row}"
    );
    assert!(!row.to_string().contains("s3cret"));
    let v = wait_fetch_status(&srv, "extra", 200).await;
    assert_eq!(v["data"]["rows"].as_array().unwrap().len(), 1);
    let v = wait_fetch_status(&srv, "default", 404).await;
    assert_eq!(
        v["code"], "unknown_client",
        "a config client deleted in the catalog stays deleted"
    );
    assert_eq!(
        logging
            .scalar("SELECT count(*) FROM athena_clients WHERE client_name = 'default'")
            .await
            .unwrap(),
        "1"
    );
}

#[tokio::test]
async fn admin_client_routes_refuse_bad_input() {
    let db = TestDb::create(DATA).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging)).await;
    wait_listed(&srv, "default").await;
    let put = |name: &str, body: Value| {
        let path = format!("/admin/clients/{name}/freeze");
        let srv = &srv;
        async move { admin(srv, reqwest::Method::PUT, &path, Some(body)).await }
    };
    assert_error(
        &put("nope", json!({"is_frozen": true})).await,
        404,
        "unknown_client",
    );
    assert_error(
        &put("default", json!({"is_frozen": "yes"})).await,
        400,
        "invalid_field",
    );
    assert_error(&put("default", json!({})).await, 400, "missing_field");
    assert_error(&put("default", json!([true])).await, 400, "invalid_body");
    let r = read(
        srv.http
            .get(srv.url("/admin/clients"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 401, "missing_api_key");
    assert_eq!(
        rows(&srv.post("/gateway/fetch", json!({"table_name": "t"})).await).len(),
        1,
        "nothing was frozen"
    );
}

#[tokio::test]
async fn admin_clients_without_a_provisioned_logging_database_is_503() {
    let db = TestDb::create(DATA).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml_unmigrated(&db, &logging)).await;
    let (s, v) = admin(&srv, reqwest::Method::GET, "/admin/clients", None).await;
    assert_error(&(s, v), 503, "backend_unavailable");
}

#[tokio::test]
async fn clients_created_by_the_admin_serve_at_once_and_deletion_removes_them_for_good() {
    let db = TestDb::create(DATA).await;
    let other = TestDb::create(DATA).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging)).await;
    wait_listed(&srv, "default").await;
    let with_password = other.uri.replace("postgres@", "postgres:s3cret@");
    let (s, v) = admin(&srv, reqwest::Method::POST, "/admin/clients", Some(json!({"client_name": "extra", "pg_uri": with_password, "description": "second database"}))).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["data"]["client"]["source"], "admin");
    assert!(!v.to_string().contains("s3cret"), "{v}");
    let r = srv
        .http
        .post(srv.url("/gateway/fetch"))
        .header("X-Athena-Client", "extra")
        .json(&json!({"table_name": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        rows(&read(r).await).len(),
        1,
        "the new client serves without a restart"
    );

    let (s, v) = admin(&srv, reqwest::Method::DELETE, "/admin/clients/extra", None).await;
    assert_eq!(s, 200, "{v}");
    wait_fetch_status(&srv, "extra", 404).await;
    assert_error(
        &admin(&srv, reqwest::Method::DELETE, "/admin/clients/extra", None).await,
        404,
        "unknown_client",
    );
    drop(srv);
    let srv = TestServer::start_yaml(&yaml(&db, &logging)).await;
    wait_listed(&srv, "default").await;
    let v = wait_fetch_status(&srv, "extra", 404).await;
    assert_eq!(v["code"], "unknown_client");
}

#[tokio::test]
async fn creating_clients_refuses_bad_input() {
    let db = TestDb::create(DATA).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging)).await;
    wait_listed(&srv, "default").await;
    let post = |body: Value| {
        let srv = &srv;
        async move { admin(srv, reqwest::Method::POST, "/admin/clients", Some(body)).await }
    };
    assert_error(
        &post(json!({"client_name": "default", "pg_uri": db.uri})).await,
        409,
        "unique_violation",
    );
    let (s, _) = post(json!({"client_name": "twice", "pg_uri": db.uri})).await;
    assert_eq!(s, 201);
    assert_error(
        &post(json!({"client_name": "twice", "pg_uri": db.uri})).await,
        409,
        "unique_violation",
    );
    assert_error(
        &post(json!({"client_name": "Bad Name", "pg_uri": db.uri})).await,
        400,
        "invalid_field",
    );
    assert_error(
        &post(json!({"client_name": "x".repeat(64), "pg_uri": db.uri})).await,
        400,
        "invalid_field",
    );
    assert_error(
        &post(json!({"client_name": "c1", "pg_uri": "not a uri ::"})).await,
        400,
        "invalid_field",
    );
    assert_error(
        &post(json!({"client_name": "c2", "pg_uri": db.uri, "pg_uri_env_var": "X"})).await,
        400,
        "invalid_field",
    );
    assert_error(
        &post(json!({"client_name": "c3"})).await,
        400,
        "missing_field",
    );
    assert_error(
        &post(json!({"client_name": "c4", "pg_uri_env_var": "ATHENA_TEST_SURELY_UNSET_VAR"})).await,
        400,
        "invalid_field",
    );
    assert_error(&post(json!({"pg_uri": db.uri})).await, 400, "missing_field");
    assert_error(
        &post(json!({"client_name": 5, "pg_uri": db.uri})).await,
        400,
        "invalid_field",
    );
    assert_error(
        &admin(&srv, reqwest::Method::DELETE, "/admin/clients/nope", None).await,
        404,
        "unknown_client",
    );
    for (method, path, body) in [
        (
            reqwest::Method::PATCH,
            "/admin/clients/nope",
            json!({"description": "x"}),
        ),
        (
            reqwest::Method::PUT,
            "/admin/clients/nope/freeze",
            json!({"is_frozen": true}),
        ),
    ] {
        assert_error(
            &admin(&srv, method, path, Some(body)).await,
            404,
            "unknown_client",
        );
    }
    // A config client's connection lives in config.yaml.
    assert_error(
        &admin(
            &srv,
            reqwest::Method::PATCH,
            "/admin/clients/default",
            Some(json!({"pg_uri": db.uri})),
        )
        .await,
        400,
        "invalid_field",
    );
    let (_, v) = admin(&srv, reqwest::Method::GET, "/admin/clients", None).await;
    let names: Vec<&str> = v["data"]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "twice"]);
}

#[tokio::test]
async fn two_instances_apply_each_others_changes_within_two_seconds() {
    let db = TestDb::create(DATA).await;
    let other = TestDb::create(DATA).await;
    let logging = TestDb::create("").await;
    let a = TestServer::start_yaml(&yaml(&db, &logging)).await;
    let b = TestServer::start_yaml(&yaml(&db, &logging)).await;
    wait_listed(&a, "default").await;
    wait_listed(&b, "default").await;
    // Give both listeners a moment to subscribe.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (s, _) = admin(
        &a,
        reqwest::Method::PUT,
        "/admin/clients/default/freeze",
        Some(json!({"is_frozen": true})),
    )
    .await;
    assert_eq!(s, 200);
    let started = std::time::Instant::now();
    wait_fetch_status(&b, "default", 503).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "freeze reached the other instance in {:?}",
        started.elapsed()
    );

    let (s, _) = admin(
        &b,
        reqwest::Method::PUT,
        "/admin/clients/default/freeze",
        Some(json!({"is_frozen": false})),
    )
    .await;
    assert_eq!(s, 200);
    let started = std::time::Instant::now();
    wait_fetch_status(&a, "default", 200).await;
    assert!(started.elapsed() < Duration::from_secs(2));

    let (s, _) = admin(
        &a,
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({"client_name": "extra", "pg_uri": other.uri})),
    )
    .await;
    assert_eq!(s, 201);
    let started = std::time::Instant::now();
    wait_fetch_status(&b, "extra", 200).await;
    assert!(started.elapsed() < Duration::from_secs(2));

    let (s, _) = admin(&b, reqwest::Method::DELETE, "/admin/clients/extra", None).await;
    assert_eq!(s, 200);
    let started = std::time::Instant::now();
    wait_fetch_status(&a, "extra", 404).await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn patching_a_client_reconnects_deactivates_and_reactivates_it() {
    let db = TestDb::create(DATA).await;
    let other = TestDb::create(DATA).await;
    let third =
        TestDb::create("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2), (3);").await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging)).await;
    wait_listed(&srv, "default").await;
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let srv = &srv;
        let path = path.to_string();
        async move { admin(srv, method, &path, body).await }
    };
    let (s, _) = call(
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({"client_name": "extra", "pg_uri": other.uri})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, v) = call(
        reqwest::Method::PATCH,
        "/admin/clients/extra",
        Some(json!({"pg_uri": third.uri, "description": "moved"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["client"]["description"], "moved");
    let v = wait_fetch_status(&srv, "extra", 200).await;
    assert_eq!(
        v["data"]["rows"].as_array().unwrap().len(),
        3,
        "the client now reaches the new database"
    );

    for name in ["extra", "default"] {
        let (s, _) = call(
            reqwest::Method::PATCH,
            &format!("/admin/clients/{name}"),
            Some(json!({"is_active": false})),
        )
        .await;
        assert_eq!(s, 200);
        wait_fetch_status(&srv, name, 404).await;
        let (s, _) = call(
            reqwest::Method::PATCH,
            &format!("/admin/clients/{name}"),
            Some(json!({"is_active": true})),
        )
        .await;
        assert_eq!(s, 200);
        wait_fetch_status(&srv, name, 200).await;
    }

    let bad_patches = [
        (
            "/admin/clients/default",
            json!({"pg_uri": other.uri}),
            400,
            "invalid_field",
        ),
        ("/admin/clients/extra", json!({}), 400, "missing_field"),
        (
            "/admin/clients/extra",
            json!({"is_active": "no"}),
            400,
            "invalid_field",
        ),
        (
            "/admin/clients/extra",
            json!({"pg_uri": "::bad"}),
            400,
            "invalid_field",
        ),
        (
            "/admin/clients/extra",
            json!({"pg_uri_env_var": "ATHENA_TEST_SURELY_UNSET_VAR"}),
            400,
            "invalid_field",
        ),
        (
            "/admin/clients/nope",
            json!({"description": "x"}),
            404,
            "unknown_client",
        ),
    ];
    for (path, body, status, code) in bad_patches {
        assert_error(
            &call(reqwest::Method::PATCH, path, Some(body)).await,
            status,
            code,
        );
    }
}

#[tokio::test]
async fn freezing_under_load_answers_every_request_correctly() {
    let db = TestDb::create("CREATE TABLE t (id int); INSERT INTO t VALUES (42);").await;
    let other = TestDb::create("CREATE TABLE t (id int); INSERT INTO t VALUES (7);").await;
    let logging = TestDb::create("").await;
    let srv = std::sync::Arc::new(TestServer::start_yaml(&yaml(&db, &logging)).await);
    wait_listed(&srv, "default").await;
    let (s, _) = admin(
        &srv,
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({"client_name": "other", "pg_uri": other.uri})),
    )
    .await;
    assert_eq!(s, 201);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for i in 0..8 {
        let (srv, stop) = (srv.clone(), stop.clone());
        let (client, expected) = if i % 2 == 0 {
            ("default", 42)
        } else {
            ("other", 7)
        };
        workers.push(tokio::spawn(async move {
            let (mut ok, mut frozen) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = srv
                    .http
                    .post(srv.url("/gateway/fetch"))
                    .header("X-Athena-Client", client)
                    .json(&json!({"table_name": "t"}))
                    .send()
                    .await
                    .unwrap();
                let (s, v) = read(r).await;
                match s.as_u16() {
                    200 => {
                        assert_eq!(
                            v["data"]["rows"][0]["id"], expected,
                            "{client} answered from the wrong database"
                        );
                        ok += 1;
                    }
                    503 if v["code"] == "client_frozen" && client == "default" => frozen += 1,
                    other => panic!("{client}: unexpected {other} {v}"),
                }
            }
            (ok, frozen)
        }));
    }
    for round in 0..6 {
        let (s, _) = admin(
            &srv,
            reqwest::Method::PUT,
            "/admin/clients/default/freeze",
            Some(json!({"is_frozen": round % 2 == 0})),
        )
        .await;
        assert_eq!(s, 200);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut frozen) = (0, 0);
    for w in workers {
        let (o, f) = w.await.unwrap();
        ok += o;
        frozen += f;
    }
    assert!(ok > 0 && frozen > 0, "ok {ok}, frozen {frozen}");
    assert_eq!(
        rows(&srv.post("/gateway/fetch", json!({"table_name": "t"})).await).len(),
        1,
        "unfrozen at the end"
    );
}

#[tokio::test]
async fn a_logging_database_provisioned_by_the_operator_is_followed_too() {
    let db = TestDb::create(DATA).await;
    let other = TestDb::create(DATA).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml_unmigrated(&db, &logging)).await;
    let (s, v) = admin(&srv, reqwest::Method::POST, "/admin/provision", None).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = admin(
        &srv,
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({"client_name": "extra", "pg_uri": other.uri})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    wait_fetch_status(&srv, "extra", 200).await;
    wait_listed(&srv, "default").await;
}
