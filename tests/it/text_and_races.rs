//! Texts PostgreSQL cannot store, writes racing each other, and fields as strict as the document:
//! a NUL character in raw SQL or in an admin field is a 400 naming the field (never a 500), a
//! right updated while it is deleted is either updated or unknown (never an answer about no
//! right), an empty insert into a table that does not exist is a 404, a null where the document
//! allows none is a 400 (never the default), a boolean query parameter takes true or false, and an
//! audit header is stored as UTF-8 text or refused naming it (in PostgREST's shape under
//! `/rest/v1`).

use crate::common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn started() -> (TestDb, TestDb, TestServer) {
    let db = TestDb::create("CREATE TABLE users (id serial PRIMARY KEY, name text);").await;
    let logging = TestDb::create("").await;
    let yaml = config_yaml(&db.uri, "", &format!("logging:\n  uri: {}\n", logging.uri));
    let srv = TestServer::start_yaml(&yaml).await;
    wait_logging_ready(&srv).await;
    (db, logging, srv)
}

/// (method, path, body, the field the refusal must name).
type Case = (Method, String, Value, &'static str);

/// The cases (sent with the admin key to client `default`) not answered 400 with an error naming
/// their field (and with `code`, when given).
async fn not_refused(srv: &TestServer, cases: Vec<Case>, code: Option<&str>) -> Vec<String> {
    let mut wrong = Vec::new();
    for (method, path, body, field) in cases {
        let res = read(
            srv.http
                .request(method.clone(), srv.url(&path))
                .bearer_auth(ADMIN_KEY)
                .header("X-Athena-Client", "default")
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let named = res.1["error"]
            .as_str()
            .is_some_and(|e| e.starts_with(field));
        let coded = code.is_none_or(|c| res.1["code"] == c);
        if res.0 != StatusCode::BAD_REQUEST || !coded || !named {
            wrong.push(format!("{method} {path} {body}: {} {}", res.0, res.1));
        }
    }
    wrong
}

#[tokio::test]
async fn a_nul_character_in_raw_sql_or_an_admin_field_is_a_400_naming_the_field() {
    let (_db, logging, srv) = started().await;
    let (_, record) = create_key(&srv, json!({"name": "base", "rights": ["users.read"]})).await;
    let id = record["id"].as_str().unwrap().to_string();
    let (s, v) = admin(
        &srv,
        Method::POST,
        "/admin/api-key-rights",
        Some(json!({"name": "orders.read"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let count =
        "SELECT (SELECT count(*) FROM api_keys) || '/' || (SELECT count(*) FROM api_key_rights)";
    let before = logging.scalar(count).await;

    let nul = "a\u{0}b";
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/gateway/query".into(),
            json!({"query": format!("SELECT 1 {nul}")}),
            "query",
        ),
        (
            Method::POST,
            "/query/sql".into(),
            json!({"query": format!("SELECT 1 {nul}"), "driver": "postgresql", "db_name": "default"}),
            "query",
        ),
        (
            Method::POST,
            "/admin/api-keys".into(),
            json!({"name": nul}),
            "name",
        ),
        (
            Method::POST,
            "/admin/api-keys".into(),
            json!({"name": "k", "description": nul}),
            "description",
        ),
        (
            Method::POST,
            "/admin/api-keys".into(),
            json!({"name": "k", "client_name": nul}),
            "client_name",
        ),
        (
            Method::POST,
            "/admin/api-keys".into(),
            json!({"name": "k", "rights": [nul]}),
            "rights[0]",
        ),
        (
            Method::PATCH,
            format!("/admin/api-keys/{id}"),
            json!({"name": nul}),
            "name",
        ),
        (
            Method::POST,
            "/admin/api-key-rights".into(),
            json!({"name": nul}),
            "name",
        ),
        (
            Method::PATCH,
            "/admin/api-key-rights/orders.read".into(),
            json!({"description": nul}),
            "description",
        ),
        (
            Method::POST,
            "/admin/clients".into(),
            json!({"client_name": "x", "pg_uri": nul}),
            "pg_uri",
        ),
    ];
    let wrong = not_refused(&srv, cases, Some("invalid_value")).await;
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(logging.scalar(count).await, before, "nothing was written");
}

#[tokio::test]
async fn a_right_updated_while_it_is_deleted_is_updated_or_unknown_never_null() {
    let (_db, _logging, srv) = started().await;
    let _ = create_key(&srv, json!({"name": "base", "rights": []})).await;
    let mut nulls = Vec::new();
    for i in 0..40 {
        let name = format!("race{i}.read");
        let (s, v) = admin(
            &srv,
            Method::POST,
            "/admin/api-key-rights",
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let path = format!("/admin/api-key-rights/{name}");
        let (patched, deleted) = tokio::join!(
            admin(
                &srv,
                Method::PATCH,
                &path,
                Some(json!({"description": "changed"}))
            ),
            admin(&srv, Method::DELETE, &path, None),
        );
        assert_eq!(deleted.0, StatusCode::OK, "{}", deleted.1);
        let fine = match patched.0 {
            StatusCode::OK => patched.1["data"]["right"]["description"] == "changed",
            StatusCode::NOT_FOUND => patched.1["code"] == "unknown_right",
            _ => false,
        };
        if !fine {
            nulls.push(format!("{} {}", patched.0, patched.1));
        }
    }
    assert!(nulls.is_empty(), "{nulls:#?}");
}

#[tokio::test]
async fn an_empty_insert_into_a_table_that_does_not_exist_is_a_404() {
    let (_db, _logging, srv) = started().await;
    for (path, body) in [("/rest/v1/nosuchtable", "[]"), ("/rest/v1/users", "[]")] {
        let res = srv
            .http
            .post(srv.url(path))
            .header("X-Athena-Client", "default")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        if path.ends_with("users") {
            assert_eq!(status, StatusCode::CREATED, "{text}");
        } else {
            assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
            assert!(text.contains("nosuchtable"), "{text}");
        }
    }
}

#[tokio::test]
async fn a_null_where_the_document_allows_none_is_a_400_never_the_default() {
    let (db, _logging, srv) = started().await;
    db.execute("CREATE TABLE copy_of_users (id int PRIMARY KEY, name text); INSERT INTO users (name) VALUES ('a');")
        .await;
    let (_, record) = create_key(&srv, json!({"name": "base", "rights": []})).await;
    let id = record["id"].as_str().unwrap().to_string();
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/admin/api-keys".into(),
            json!({"name": "k", "rights": null}),
            "rights",
        ),
        (
            Method::PATCH,
            format!("/admin/api-keys/{id}"),
            json!({"rights": null}),
            "rights",
        ),
        (
            Method::PATCH,
            format!("/admin/api-keys/{id}"),
            json!({"is_active": null}),
            "is_active",
        ),
        (
            Method::PATCH,
            "/admin/clients/default".into(),
            json!({"is_active": null}),
            "is_active",
        ),
        (
            Method::PATCH,
            "/admin/clients/default".into(),
            json!({"pg_uri": null}),
            "pg_uri",
        ),
        (
            Method::PATCH,
            "/admin/api-key-rights/users.read".into(),
            json!({"name": null}),
            "name",
        ),
        (
            Method::PUT,
            "/admin/clients/default/freeze".into(),
            json!({"is_frozen": true, "reason": null}),
            "reason",
        ),
        (
            Method::POST,
            "/pipelines".into(),
            json!({"source": {"table_name": "users"}, "sink": {"table_name": "copy_of_users"}, "dry_run": null}),
            "dry_run",
        ),
    ];
    let wrong = not_refused(&srv, cases, None).await;
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM copy_of_users")
            .await
            .as_deref(),
        Some("0"),
        "a null dry_run wrote nothing"
    );
    assert_eq!(
        srv.actors
            .snapshot
            .load()
            .get("default")
            .map(|c| c.name.clone()),
        Some("default".into())
    );

    // Where the document admits a null in an edit, it clears the value.
    let (s, v) = admin(
        &srv,
        Method::PATCH,
        "/admin/clients/default",
        Some(json!({"description": "the main database"})),
    )
    .await;
    assert_eq!(
        v["data"]["client"]["description"], "the main database",
        "{s} {v}"
    );
    let (s, v) = admin(
        &srv,
        Method::PATCH,
        "/admin/clients/default",
        Some(json!({"description": null})),
    )
    .await;
    assert_eq!(s.as_u16(), 200, "{v}");
    assert!(v["data"]["client"]["description"].is_null(), "{v}");

    for (q, status) in [
        ("true", 200),
        ("false", 200),
        ("TRUE", 200),
        ("1", 400),
        ("yes", 400),
    ] {
        let (s, v) = admin(
            &srv,
            Method::GET,
            &format!("/admin/api-keys?include_revoked={q}"),
            None,
        )
        .await;
        assert_eq!(s.as_u16(), status, "include_revoked={q}: {v}");
    }
}

#[tokio::test]
async fn audit_headers_are_kept_as_utf8_text_and_other_bytes_are_refused_naming_the_header() {
    let (db, logging, srv) = started().await;
    let insert = |name: &str, header: &'static str, value: &[u8]| {
        srv.http
            .put(srv.url("/gateway/insert"))
            .header("X-Athena-Client", "default")
            .header(
                header,
                reqwest::header::HeaderValue::from_bytes(value).unwrap(),
            )
            .json(&json!({"table_name": "users", "insert_body": {"name": name}}))
            .send()
    };
    let r = insert("kept", "X-User-Id", "José".as_bytes())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for (header, value) in [
        ("X-User-Id", &b"a\xffb"[..]),
        ("X-Company-Id", &b"\xc3"[..]),
        ("X-Organization-Id", &b"\xed\xa0\x80"[..]),
    ] {
        let (status, v) = read(insert("refused", header, value).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{header}: {v}");
        assert_eq!(v["code"], "invalid_field", "{v}");
        assert!(v["error"].as_str().unwrap().contains(header), "{v}");
    }
    assert_eq!(
        db.scalar("SELECT string_agg(name, ',') FROM users")
            .await
            .as_deref(),
        Some("kept")
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ids = logging
            .scalar("SELECT string_agg(coalesce(user_id, '-'), ',' ORDER BY created_at) FROM gateway_request_log")
            .await;
        if ids.as_deref() == Some("José,-,-,-") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "logged user ids: {ids:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_nul_character_in_a_rest_body_or_an_audit_header_there_is_refused_in_postgrests_shape() {
    let (db, _logging, srv) = started().await;
    db.execute("CREATE FUNCTION echo(t text) RETURNS text LANGUAGE sql AS 'SELECT t';")
        .await;
    let rest = |path: &str| {
        srv.http
            .post(srv.url(path))
            .header("X-Athena-Client", "default")
            .bearer_auth(ADMIN_KEY)
    };
    for (path, body, at) in [
        (
            "/rest/v1/users",
            json!([{"name": "ok"}, {"name": "a\u{0}b"}]),
            "[1].name",
        ),
        ("/rest/v1/rpc/echo", json!({"t": "\u{0}"}), "t holds"),
    ] {
        let r = rest(path).json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            r.headers()["x-athena-error-code"],
            "invalid_value",
            "{path}"
        );
        let v: Value = r.json().await.unwrap();
        assert!(v["message"].as_str().unwrap().contains(at), "{path}: {v}");
    }
    let r = rest("/rest/v1/users")
        .header(
            "X-User-Id",
            reqwest::header::HeaderValue::from_bytes(b"a\xffb").unwrap(),
        )
        .json(&json!({"name": "refused"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["x-athena-error-code"], "invalid_field");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "PGRST100", "{v}");
    assert!(v["message"].as_str().unwrap().contains("X-User-Id"), "{v}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM users").await.as_deref(),
        Some("0"),
        "nothing was written"
    );
}
