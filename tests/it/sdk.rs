//! The Rust SDK against a live Athena (the Athena backend, over HTTP) and a live PostgreSQL (the
//! PostgreSQL backend, in process): the same calls on both, every builder, writes, refusals,
//! errors with the gateway's codes, injection attempts, raw SQL and keys.

use crate::common;

use athena_rs::sdk::{OrderDirection, SdkError};
use athena_rs::{AthenaClient, BackendType};
use common::*;
use serde::Deserialize;
use serde_json::json;

/// A database seeded with [`SEED`], Athena serving it, and one SDK client of each backend.
struct Setup {
    db: TestDb,
    _srv: TestServer,
    athena: AthenaClient,
    postgres: AthenaClient,
}

async fn setup() -> Setup {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let athena = AthenaClient::builder()
        .backend(BackendType::Athena)
        .url(&srv.base)
        .client("default")
        .build()
        .await
        .expect("athena client builds");
    let postgres = AthenaClient::builder()
        .url(&db.uri)
        .max_connections(4)
        .build()
        .await
        .expect("postgres client builds");
    assert_eq!(postgres.backend(), BackendType::PostgreSQL);
    Setup {
        db,
        _srv: srv,
        athena,
        postgres,
    }
}

#[derive(Debug, Deserialize, PartialEq)]
struct User {
    id: i64,
    email: String,
    age: Option<i32>,
}

#[track_caller]
fn api_err(e: SdkError, status: u16, code: &str) -> SdkError {
    assert_eq!(e.code(), code, "{e:?}");
    assert_eq!(e.status(), Some(status), "{e:?}");
    let f = e.api().expect("an API failure");
    assert!(!f.error.is_empty() && !f.message.is_empty(), "{f:?}");
    e
}

/// Reads with every builder method; the same answers from both backends.
async fn reads(c: &AthenaClient) {
    let r = c
        .select("users")
        .columns(["id", "email", "age"])
        .where_eq("status", "active")
        .where_gt("age", 20)
        .where_in("id", [1, 2, 3, 4, 5])
        .order_by("age", OrderDirection::Desc)
        .limit(10)
        .offset(0)
        .count_exact()
        .execute()
        .await
        .unwrap();
    let users: Vec<User> = r.rows().unwrap();
    assert_eq!(
        users,
        vec![
            User {
                id: 1,
                email: "ada@example.com".into(),
                age: Some(36)
            },
            User {
                id: 5,
                email: "eve@example.com".into(),
                age: Some(25)
            },
        ]
    );
    assert_eq!(r.count, Some(2));

    let page = c
        .select("users")
        .columns(["name"])
        .order_by("id", OrderDirection::Asc)
        .limit(2)
        .offset(1)
        .execute()
        .await
        .unwrap();
    assert_eq!(
        page.rows,
        vec![json!({"name": "Bob"}), json!({"name": "Cy"})]
    );

    let names = |r: athena_rs::QueryResult| -> Vec<String> {
        r.rows
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect()
    };
    let q = || {
        c.select("users")
            .columns(["name"])
            .order_by("id", OrderDirection::Asc)
    };
    assert_eq!(
        names(q().where_neq("status", "active").execute().await.unwrap()),
        ["Bob", "Dee"]
    );
    assert_eq!(
        names(q().where_gte("age", 36).execute().await.unwrap()),
        ["Ada", "Dee"]
    );
    assert_eq!(
        names(q().where_lt("age", 36).execute().await.unwrap()),
        ["Bob", "Eve"]
    );
    assert_eq!(
        names(q().where_lte("age", 25).execute().await.unwrap()),
        ["Bob", "Eve"]
    );
    assert_eq!(
        names(q().where_like("email", "%e@%").execute().await.unwrap()),
        ["Dee", "Eve"]
    );
    assert_eq!(
        names(q().where_ilike("name", "a%").execute().await.unwrap()),
        ["Ada"]
    );
    assert_eq!(
        names(q().where_null("age").execute().await.unwrap()),
        ["Cy"]
    );
    assert_eq!(
        names(
            q().where_not_null("score")
                .where_lt("score", 5)
                .execute()
                .await
                .unwrap()
        ),
        ["Bob", "Eve"]
    );
    assert_eq!(
        names(
            q().where_in("email", ["cy@example.com", "nobody"])
                .execute()
                .await
                .unwrap()
        ),
        ["Cy"]
    );
    assert_eq!(
        names(
            q().where_condition(json!({"operator": "or", "value": "age.gt.40,name.eq.Bob"}))
                .execute()
                .await
                .unwrap()
        ),
        ["Bob", "Dee"]
    );
    // Numbers from strings are bound with the column's type, as the gateway does.
    assert_eq!(
        names(q().where_eq("age", "41").execute().await.unwrap()),
        ["Dee"]
    );

    let other = c
        .select("things")
        .schema("other")
        .order_by("id", OrderDirection::Desc)
        .execute()
        .await
        .unwrap();
    assert_eq!(other.rows[0], json!({"id": 2, "label": "two"}));
    let order = c
        .select("orders")
        .columns(["tags", "meta"])
        .where_contains("tags", ["red"])
        .execute()
        .await
        .unwrap();
    assert_eq!(
        order.rows,
        vec![json!({"tags": ["red", "blue"], "meta": {"gift": true, "items": 2}})]
    );
    let first: Option<User> = c
        .select("users")
        .where_eq("id", 3)
        .execute()
        .await
        .unwrap()
        .first()
        .unwrap();
    assert_eq!(first.unwrap().age, None);
}

#[tokio::test]
async fn select_with_every_builder_answers_alike_on_both_backends() {
    let s = setup().await;
    reads(&s.athena).await;
    reads(&s.postgres).await;
}

/// Inserts, upserts, updates and deletes, checked in the database itself.
async fn writes(c: &AthenaClient, db: &TestDb) {
    let r = c
        .insert("users")
        .payload(json!({"email": "new@example.com", "name": "New", "age": 7}))
        .columns(["id", "email"])
        .execute()
        .await
        .unwrap();
    assert_eq!(r.rows.len(), 1);
    let id = r.rows[0]["id"].as_i64().unwrap();
    let r = c
        .insert("users")
        .payload(json!([{"email": "m1@example.com"}, {"email": "m2@example.com", "age": 8}]))
        .execute()
        .await
        .unwrap();
    assert_eq!(r.rows.len(), 2);
    assert_eq!(
        r.rows[0]["status"], "active",
        "defaults apply: {:?}",
        r.rows
    );
    // Upsert on the unique email.
    c.insert("users")
        .payload(json!({"email": "new@example.com", "name": "Renamed"}))
        .on_conflict(["email"])
        .execute()
        .await
        .unwrap();
    assert_eq!(
        db.scalar("SELECT name FROM users WHERE email = 'new@example.com'")
            .await
            .as_deref(),
        Some("Renamed")
    );
    let r = c
        .insert("users")
        .payload(json!({"email": "new@example.com"}))
        .on_conflict(["email"])
        .ignore_duplicates()
        .execute()
        .await
        .unwrap();
    assert!(r.rows.is_empty());
    let e = c
        .insert("users")
        .payload(json!({"email": "new@example.com"}))
        .execute()
        .await
        .unwrap_err();
    api_err(e, 409, "unique_violation");

    let r = c
        .update("users")
        .payload(json!({"status": "gone"}))
        .where_eq("id", id)
        .columns(["id", "status"])
        .execute()
        .await
        .unwrap();
    assert_eq!(r.rows, vec![json!({"id": id, "status": "gone"})]);
    let r = c
        .update("users")
        .payload(json!({"age": 9}))
        .where_in("email", ["m1@example.com", "m2@example.com"])
        .execute()
        .await
        .unwrap();
    assert_eq!(r.len(), 2);

    let r = c.delete("users").resource_id(id).execute().await.unwrap();
    assert_eq!(r.len(), 1);
    let r = c
        .delete("users")
        .where_eq("age", 9)
        .where_like("email", "m%")
        .execute()
        .await
        .unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(
        db.scalar("SELECT count(*) FROM users").await.as_deref(),
        Some("5")
    );
}

#[tokio::test]
async fn insert_update_delete_through_athena() {
    let s = setup().await;
    writes(&s.athena, &s.db).await;
}

#[tokio::test]
async fn insert_update_delete_on_postgres_directly() {
    let s = setup().await;
    writes(&s.postgres, &s.db).await;
}

/// Refusals: writes without a filter, unknown names, bad values, with the gateway's codes.
async fn refusals(c: &AthenaClient, db: &TestDb) {
    let e = c
        .update("users")
        .payload(json!({"status": "x"}))
        .execute()
        .await
        .unwrap_err();
    api_err(e, 400, "missing_filter");
    let e = c.delete("users").execute().await.unwrap_err();
    let e = api_err(e, 400, "missing_filter");
    assert!(e.hint().is_some(), "{e:?}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM users WHERE status = 'x'")
            .await
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM users").await.as_deref(),
        Some("5")
    );

    api_err(
        c.select("nope").execute().await.unwrap_err(),
        404,
        "unknown_table",
    );
    api_err(
        c.select("users")
            .columns(["nope"])
            .execute()
            .await
            .unwrap_err(),
        400,
        "unknown_column",
    );
    api_err(
        c.select("users")
            .where_eq("nope", 1)
            .execute()
            .await
            .unwrap_err(),
        400,
        "unknown_column",
    );
    api_err(
        c.update("users")
            .payload(json!({"nope": 1}))
            .where_eq("id", 1)
            .execute()
            .await
            .unwrap_err(),
        400,
        "unknown_column",
    );
    api_err(
        c.select("users")
            .where_eq("age", "abc")
            .execute()
            .await
            .unwrap_err(),
        400,
        "invalid_value",
    );
    api_err(
        c.select("users").limit(5000).execute().await.unwrap_err(),
        400,
        "limit_exceeded",
    );
    api_err(
        c.insert("users").execute().await.unwrap_err(),
        400,
        "missing_field",
    );
    api_err(
        c.insert("orders")
            .payload(json!({"user_id": 1, "total": -1}))
            .execute()
            .await
            .unwrap_err(),
        422,
        "check_violation",
    );
    api_err(
        c.insert("orders")
            .payload(json!({"user_id": 999, "total": 1}))
            .execute()
            .await
            .unwrap_err(),
        422,
        "foreign_key_violation",
    );
}

#[tokio::test]
async fn refusals_carry_the_gateway_codes_on_both_backends() {
    let s = setup().await;
    refusals(&s.athena, &s.db).await;
    refusals(&s.postgres, &s.db).await;
    // Through Athena the envelope's trace id comes along; in process no server saw it.
    let e = s.athena.select("nope").execute().await.unwrap_err();
    assert!(e.trace_id().is_some_and(|t| !t.is_empty()), "{e:?}");
    let e = s.postgres.select("nope").execute().await.unwrap_err();
    assert_eq!(e.trace_id(), None);
}

/// Hostile identifiers and values change nothing and leak nothing.
async fn injections(c: &AthenaClient, db: &TestDb) {
    for table in [
        "users; DROP TABLE users",
        "users\"; DROP TABLE users; --",
        "pg_catalog.pg_authid",
    ] {
        let e = c.select(table).execute().await.unwrap_err();
        assert!(matches!(e.code(), "unknown_table"), "{table}: {e:?}");
    }
    for column in [
        "id\"; DROP TABLE users; --",
        "id) FROM users; --",
        "(select 1)",
        "*,pg_sleep(1)",
    ] {
        let e = c
            .select("users")
            .columns([column])
            .execute()
            .await
            .unwrap_err();
        assert_eq!(e.code(), "unknown_column", "{column}: {e:?}");
        let e = c
            .select("users")
            .where_eq(column, 1)
            .execute()
            .await
            .unwrap_err();
        assert_eq!(e.code(), "unknown_column", "{column}: {e:?}");
        let e = c
            .update("users")
            .payload(json!({"name": "x"}))
            .where_eq(column, 1)
            .execute()
            .await
            .unwrap_err();
        assert_eq!(e.code(), "unknown_column", "{column}: {e:?}");
    }
    let hostile = "x' OR '1'='1'; DROP TABLE users; --";
    assert!(c
        .select("users")
        .where_eq("email", hostile)
        .execute()
        .await
        .unwrap()
        .is_empty());
    assert!(c
        .select("users")
        .where_in("email", [hostile, "') OR true --"])
        .execute()
        .await
        .unwrap()
        .is_empty());
    let e = c
        .delete("users")
        .where_eq("id", "1 OR 1=1")
        .execute()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_value", "{e:?}");
    let r = c
        .update("users")
        .payload(json!({"name": hostile}))
        .where_eq("email", hostile)
        .execute()
        .await
        .unwrap();
    assert!(r.is_empty());
    // A hostile value is stored verbatim, as data.
    let r = c
        .insert("users")
        .payload(json!({"email": hostile}))
        .columns(["email"])
        .execute()
        .await
        .unwrap();
    assert_eq!(r.rows[0]["email"], hostile);
    c.delete("users")
        .where_eq("email", hostile)
        .execute()
        .await
        .unwrap();
    assert_eq!(
        db.scalar("SELECT count(*) FROM users").await.as_deref(),
        Some("5")
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM orders").await.as_deref(),
        Some("3")
    );
}

#[tokio::test]
async fn injection_attempts_in_identifiers_and_values_are_harmless() {
    let s = setup().await;
    injections(&s.athena, &s.db).await;
    injections(&s.postgres, &s.db).await;
}

#[tokio::test]
async fn raw_sql_needs_a_key_holding_gateway_query_through_athena() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&config_yaml(
        &db.uri,
        "",
        &format!(
            "logging:\n  uri: {}\napi_keys:\n  enforce: true\n",
            logging.uri
        ),
    ))
    .await;
    let (with, _) = create_key(
        &srv,
        json!({"name": "sql", "rights": ["gateway.query", "users.read"]}),
    )
    .await;
    let (without, _) = create_key(&srv, json!({"name": "reader", "rights": ["users.read"]})).await;
    let client = |key: Option<String>| {
        let mut b = AthenaClient::builder().url(&srv.base).client("default");
        if let Some(k) = key {
            b = b.key(k);
        }
        b.build()
    };
    let sql = client(Some(with.clone())).await.unwrap();
    assert!(
        !format!("{sql:?}").contains(&with),
        "Debug never shows the key"
    );
    let r = sql
        .execute_sql_with(
            "SELECT name FROM users WHERE age > $1 ORDER BY name",
            vec![json!(30)],
        )
        .await
        .unwrap();
    assert_eq!(r.rows, vec![json!({"name": "Ada"}), json!({"name": "Dee"})]);
    let r = sql
        .execute_sql("UPDATE users SET score = 1 WHERE age = 25")
        .await
        .unwrap();
    assert_eq!(r.rows_affected, Some(2));

    let reader = client(Some(without)).await.unwrap();
    assert_eq!(
        reader
            .select("users")
            .limit(1)
            .execute()
            .await
            .unwrap()
            .len(),
        1
    );
    let e = reader.execute_sql("SELECT 1").await.unwrap_err();
    let e = api_err(e, 403, "forbidden");
    assert!(e.api().unwrap().error.contains("gateway.query"), "{e:?}");
    let anonymous = client(None).await.unwrap();
    api_err(
        anonymous.execute_sql("SELECT 1").await.unwrap_err(),
        401,
        "missing_api_key",
    );
    api_err(
        anonymous.select("users").execute().await.unwrap_err(),
        401,
        "missing_api_key",
    );
    let bad = client(Some("ath_nope.nope".into())).await.unwrap();
    api_err(
        bad.select("users").execute().await.unwrap_err(),
        401,
        "invalid_api_key",
    );
}

#[tokio::test]
async fn raw_sql_on_postgres_binds_its_parameters() {
    let s = setup().await;
    let r = s
        .postgres
        .execute_sql_with(
            "SELECT email FROM users WHERE name = $1",
            vec![json!("Ada' OR '1'='1")],
        )
        .await
        .unwrap();
    assert!(r.is_empty());
    let r = s
        .postgres
        .execute_sql_with("SELECT $1::int + 1 AS n", vec![json!(41)])
        .await
        .unwrap();
    assert_eq!(r.rows, vec![json!({"n": 42})]);
    let e = s.postgres.execute_sql("SELEC nonsense").await.unwrap_err();
    assert_eq!(e.code(), "syntax_error", "{e:?}");
}

#[tokio::test]
async fn cql_is_refused_by_postgresql_clients_with_a_typed_error() {
    let s = setup().await;
    // Directly, the SDK knows PostgreSQL has no CQL.
    let e = s
        .postgres
        .execute_cql("SELECT * FROM ks.t")
        .await
        .unwrap_err();
    assert!(
        matches!(e, SdkError::Unsupported { feature: "CQL", .. }),
        "{e:?}"
    );
    assert_eq!(e.code(), "unsupported_by_backend");
    // Through Athena (with a key that may run raw statements), the server refuses CQL on a
    // PostgreSQL client.
    let admin = AthenaClient::builder()
        .url(&s._srv.base)
        .client("default")
        .key(ADMIN_KEY)
        .build()
        .await
        .unwrap();
    let e = admin
        .execute_cql_with("SELECT * FROM ks.t WHERE id = ?", vec![json!(1)])
        .await
        .unwrap_err();
    assert!(matches!(e, SdkError::Api { .. }), "{e:?}");
    assert_eq!(e.code(), "unsupported_by_backend");
}

#[tokio::test]
async fn settings_a_backend_cannot_apply_are_refused_at_build() {
    let e = AthenaClient::builder()
        .url("http://127.0.0.1:1")
        .build()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("client"), "{e}");
    let e = AthenaClient::builder()
        .url("http://127.0.0.1:1")
        .client("default")
        .circuit_breaker_threshold(3)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(e, SdkError::Config(ref m) if m.contains("circuit_breaker_threshold")),
        "{e}"
    );
    let e = AthenaClient::builder()
        .url("postgres://postgres:secret@127.0.0.1:1/x")
        .idle_timeout(std::time::Duration::from_secs(1))
        .build()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("idle_timeout"), "{e}");
    let pg = AthenaClient::new("postgres://postgres:pw-secret@127.0.0.1:5432/postgres", "")
        .await
        .unwrap();
    assert!(
        !format!("{pg:?}").contains("pw-secret"),
        "Debug never shows the password"
    );
    let e = AthenaClient::new("ftp://user:secret@host/x", "")
        .await
        .unwrap_err();
    assert!(!e.to_string().contains("secret"), "{e}");
    assert!(BackendType::from_name("supabase").is_err());
    assert_eq!(
        BackendType::from_name("postgres").unwrap(),
        BackendType::PostgreSQL
    );
}

#[tokio::test]
async fn health_check_asks_the_server_or_the_database() {
    let s = setup().await;
    s.athena.health_check().await.unwrap();
    s.postgres.health_check().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_backend_is_a_typed_error() {
    let c = AthenaClient::builder()
        .url("http://127.0.0.1:1")
        .client("default")
        .build()
        .await
        .unwrap();
    let e = c.select("users").execute().await.unwrap_err();
    assert_eq!(e.code(), "transport", "{e:?}");
    assert_eq!(c.health_check().await.unwrap_err().code(), "transport");
    let c = AthenaClient::builder()
        .url("postgres://postgres@127.0.0.1:1/x")
        .connection_timeout(std::time::Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let e = c.select("users").execute().await.unwrap_err();
    assert_eq!(e.status(), Some(503), "{e:?}");
    assert_eq!(c.health_check().await.unwrap_err().status(), Some(503));
}
