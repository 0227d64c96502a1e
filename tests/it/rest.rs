//! `/rest/v1/{table}` against a real PostgreSQL: every filter operator and group, aliases,
//! ordering, paging with `Range`/`Content-Range`/206, counts, the single-object media type,
//! inserts, upserts, updates and deletes with each `Prefer`, the cache, hostile input (each
//! answered with PostgREST's error body and changing no data), API-key rights, and a real
//! PostgREST client library (postgrest-py) driving the server.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

/// The shared seed plus a table of booleans for `is.true|false|unknown`.
fn seed() -> String {
    format!(
        "{SEED}\nCREATE TABLE flags (id int PRIMARY KEY, flag boolean);\n\
         INSERT INTO flags VALUES (1, true), (2, false), (3, NULL);"
    )
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} (status {})", self.body, self.status))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `name` of every row of a bare array.
    fn names(&self) -> Vec<String> {
        let v = self.json();
        let rows = v
            .as_array()
            .unwrap_or_else(|| panic!("not an array: {} ({})", self.body, self.status));
        rows.iter()
            .map(|r| r["name"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

/// A request to `path` (with its query string) carrying `X-Athena-Client: default`.
fn request(srv: &TestServer, method: Method, path: &str) -> reqwest::RequestBuilder {
    srv.http
        .request(method, srv.url(path))
        .header("X-Athena-Client", "default")
}

async fn send(rb: reqwest::RequestBuilder) -> Answer {
    let r = rb.send().await.expect("request sent");
    Answer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.expect("body read"),
    }
}

async fn get(srv: &TestServer, path: &str) -> Answer {
    send(request(srv, Method::GET, path)).await
}

/// Sends `body` as raw text with `Content-Type: application/json` and `headers`.
async fn write(
    srv: &TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let mut rb = request(srv, method, path);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    send(rb).await
}

/// Asserts PostgREST's error body (exactly `code`, `message`, `details`, `hint`), the status, the
/// PostgREST code and the gateway's code in `X-Athena-Error-Code`.
#[track_caller]
fn assert_rest_error(a: &Answer, status: u16, code: &str, athena: &str) {
    assert_eq!(a.status, status, "status of {}", a.body);
    let v = a.json();
    let keys: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {}", a.body))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["code", "message", "details", "hint"], "{}", a.body);
    assert_eq!(v["code"], code, "{}", a.body);
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        a.body
    );
    assert_eq!(a.header("x-athena-error-code"), Some(athena), "{}", a.body);
}

/// A checksum of every table the tests write to.
async fn checksum(db: &TestDb) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for q in [
        "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM users t",
        "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM orders t",
        "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM flags t",
        "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM other.things t",
        "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace",
    ] {
        out.push(db.scalar(q).await);
    }
    out
}

#[tokio::test]
async fn every_filter_operator_and_group_selects_the_right_rows() {
    let db = TestDb::create(&seed()).await;
    let srv = TestServer::start(&db).await;
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("age=eq.25", vec!["Bob", "Eve"]),
        ("status=neq.active", vec!["Bob", "Dee"]),
        ("age=gt.36", vec!["Dee"]),
        ("age=gte.36", vec!["Ada", "Dee"]),
        ("age=lt.36", vec!["Bob", "Eve"]),
        ("age=lte.36", vec!["Ada", "Bob", "Eve"]),
        ("email=like.*e@*", vec!["Dee", "Eve"]),
        ("name=ilike.a*", vec!["Ada"]),
        ("name=eq.A*", vec![]),
        ("age=is.null", vec!["Cy"]),
        ("age=not.is.null", vec!["Ada", "Bob", "Dee", "Eve"]),
        ("name=in.(Ada,Cy,Zed)", vec!["Ada", "Cy"]),
        ("name=in.(%22Bob%22,%22a,b%22)", vec!["Bob"]),
        ("name=not.in.(Ada,Bob)", vec!["Cy", "Dee", "Eve"]),
        ("status=not.eq.active", vec!["Bob", "Dee"]),
        ("age=gte.25&age=lte.30", vec!["Bob", "Eve"]),
        ("status=eq.active&age=eq.25", vec!["Eve"]),
        ("or=(name.eq.Ada,age.lt.30)", vec!["Ada", "Bob", "Eve"]),
        (
            "or=(name.eq.Cy,and(age.gt.30,status.eq.banned))",
            vec!["Cy", "Dee"],
        ),
        ("and=(age.gte.25,age.lte.36)", vec!["Ada", "Bob", "Eve"]),
        ("not.or=(status.eq.active,age.is.null)", vec!["Bob", "Dee"]),
        // NOT (active AND NULL < 30) is NULL for Cy: not selected, as in SQL.
        (
            "not.and=(status.eq.active,age.lt.30)",
            vec!["Ada", "Bob", "Dee"],
        ),
        (
            "or=(name.in.(Bob,%22Eve%22),not.and(age.is.null,name.eq.Cy))&status=eq.active",
            vec!["Ada", "Eve"],
        ),
    ];
    for (q, expected) in cases {
        let a = get(&srv, &format!("/rest/v1/users?select=name&order=id&{q}")).await;
        assert_eq!(a.status, 200, "{q}: {}", a.body);
        assert_eq!(a.names(), expected, "{q}");
        assert!(a
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")));
    }
    for (q, expected) in [
        ("flag=is.true", json!([1])),
        ("flag=is.false", json!([2])),
        ("flag=is.unknown", json!([3])),
        ("flag=not.is.true", json!([2, 3])),
    ] {
        let a = get(&srv, &format!("/rest/v1/flags?select=id&order=id&{q}")).await;
        let ids: Vec<Value> = a
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].clone())
            .collect();
        assert_eq!(Value::Array(ids), expected, "{q}");
    }
    for (q, expected) in [
        ("tags=cs.%7Bblue%7D", json!(["5.50", "20.00"])),
        ("tags=cd.%7Bblue,green%7D", json!(["5.50", "100.00"])),
        ("meta=cs.%7B%22gift%22:true%7D", json!(["20.00"])),
        ("meta=cd.%7B%22gift%22:false,%22x%22:1%7D", json!(["5.50"])),
    ] {
        let a = get(
            &srv,
            &format!("/rest/v1/orders?select=total&order=total&{q}"),
        )
        .await;
        assert_eq!(a.status, 200, "{q}: {}", a.body);
        let totals: Vec<String> = a
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["total"].to_string())
            .collect();
        let expected: Vec<String> = expected
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(totals, expected, "{q}");
    }
}

#[tokio::test]
async fn select_renames_columns_and_order_places_nulls() {
    let db = TestDb::create(&seed()).await;
    let srv = TestServer::start(&db).await;
    let a = get(&srv, "/rest/v1/users?select=id,mail:email&id=eq.1").await;
    assert_eq!(a.json(), json!([{"id": 1, "mail": "ada@example.com"}]));
    let a = get(&srv, "/rest/v1/users?select=%22my%20key%22:name,id&id=eq.2").await;
    assert_eq!(a.json(), json!([{"my key": "Bob", "id": 2}]));
    let a = get(&srv, "/rest/v1/users?select=*&id=eq.1").await;
    let row = &a.json()[0];
    assert_eq!(row.as_object().unwrap().len(), 7, "{row}");
    let a = get(&srv, "/rest/v1/users?id=eq.1").await;
    assert_eq!(
        a.json()[0].as_object().unwrap().len(),
        7,
        "no select is every column"
    );

    let a = get(
        &srv,
        "/rest/v1/users?select=name&order=age.desc.nullsfirst,id",
    )
    .await;
    assert_eq!(a.names(), ["Cy", "Dee", "Ada", "Bob", "Eve"]);
    let a = get(
        &srv,
        "/rest/v1/users?select=name&order=age.asc.nullslast,id.desc",
    )
    .await;
    assert_eq!(a.names(), ["Eve", "Bob", "Ada", "Dee", "Cy"]);
    let a = get(
        &srv,
        "/rest/v1/users?select=name&order=age.desc.nullslast,name",
    )
    .await;
    assert_eq!(a.names(), ["Dee", "Ada", "Bob", "Eve", "Cy"]);
    // A schema through the profile header, as PostgREST clients send it.
    let a = send(
        request(&srv, Method::GET, "/rest/v1/things?select=label&order=id")
            .header("Accept-Profile", "other"),
    )
    .await;
    assert_eq!(a.json(), json!([{"label": "one"}, {"label": "two"}]));
}

#[tokio::test]
async fn paging_answers_content_range_and_206_when_the_total_is_larger() {
    let db = TestDb::create(&seed()).await;
    let srv = TestServer::start(&db).await;
    let a = get(&srv, "/rest/v1/users?select=name&order=id&limit=2").await;
    assert_eq!((a.status, a.header("content-range")), (200, Some("0-1/*")));
    assert_eq!(a.names(), ["Ada", "Bob"]);

    let counted = |path: &str, extra: &[(&'static str, &'static str)]| {
        let mut rb = request(&srv, Method::GET, path).header("Prefer", "count=exact");
        for (k, v) in extra {
            rb = rb.header(*k, *v);
        }
        send(rb)
    };
    let a = counted("/rest/v1/users?select=name&order=id&limit=2&offset=1", &[]).await;
    assert_eq!((a.status, a.header("content-range")), (206, Some("1-2/5")));
    assert_eq!(a.names(), ["Bob", "Cy"]);
    let a = counted(
        "/rest/v1/users?select=name&order=id&limit=4",
        &[("Range", "3-9"), ("Range-Unit", "items")],
    )
    .await;
    assert_eq!((a.status, a.header("content-range")), (206, Some("3-4/5")));
    assert_eq!(a.names(), ["Dee", "Eve"]);
    let a = counted("/rest/v1/users?select=name&order=id", &[("Range", "0-4")]).await;
    assert_eq!((a.status, a.header("content-range")), (200, Some("0-4/5")));
    let a = get(&srv, "/rest/v1/users?select=name&count=exact&age=eq.25").await;
    assert_eq!((a.status, a.header("content-range")), (200, Some("0-1/2")));
    let a = counted("/rest/v1/users?id=eq.999", &[]).await;
    assert_eq!(
        (a.status, a.header("content-range"), a.body.as_str()),
        (200, Some("*/0"), "[]")
    );
    let a = get(&srv, "/rest/v1/users?id=eq.999").await;
    assert_eq!(a.header("content-range"), Some("*/*"));
    let a = counted("/rest/v1/users?offset=10", &[]).await;
    assert_rest_error(&a, 416, "PGRST103", "range_not_satisfiable");

    let head = send(
        request(&srv, Method::HEAD, "/rest/v1/users?age=eq.25&limit=1")
            .header("Prefer", "count=exact"),
    )
    .await;
    assert_eq!(
        (
            head.status,
            head.header("content-range"),
            head.body.as_str()
        ),
        (206, Some("0-0/2"), "")
    );
}

#[tokio::test]
async fn the_object_media_type_answers_one_row_or_406() {
    let db = TestDb::create(&seed()).await;
    let srv = TestServer::start(&db).await;
    let object = |q: &str| {
        send(
            request(
                &srv,
                Method::GET,
                &format!("/rest/v1/users?select=id,name&{q}"),
            )
            .header("Accept", "application/vnd.pgrst.object+json"),
        )
    };
    let a = object("id=eq.1").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json(), json!({"id": 1, "name": "Ada"}));
    assert!(a
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/vnd.pgrst.object+json")));
    for q in ["age=eq.25", "id=eq.999"] {
        let a = object(q).await;
        assert_rest_error(&a, 406, "PGRST116", "not_one_row");
    }
    let a = object("age=eq.25").await;
    assert_eq!(a.json()["details"], "The result contains 2 rows");
    let a = send(request(&srv, Method::GET, "/rest/v1/users").header("Accept", "text/csv")).await;
    assert_rest_error(&a, 406, "PGRST107", "not_acceptable");
    let a = send(
        request(&srv, Method::GET, "/rest/v1/users?select=name,age&id=eq.3")
            .header("Accept", "application/vnd.pgrst.array+json;nulls=stripped"),
    )
    .await;
    assert_eq!(a.json(), json!([{"name": "Cy"}]));
}

#[tokio::test]
async fn post_inserts_objects_and_arrays_with_each_return_preference() {
    let db = TestDb::create(&seed()).await;
    let srv = TestServer::start(&db).await;
    let count = || db.scalar("SELECT count(*) FROM users");

    let a = write(
        &srv,
        Method::POST,
        "/rest/v1/users",
        &[],
        Some(r#"{"email":"f@x.io","name":"F"}"#),
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (201, ""));
    assert_eq!(count().await.as_deref(), Some("6"));

    let a = write(
        &srv,
        Method::POST,
        "/rest/v1/users?select=mail:email,name",
        &[("Prefer", "return=representation")],
        Some(r#"[{"email":"g@x.io","name":"G"},{"email":"h@x.io"}]"#),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(
        a.json(),
        json!([{"mail": "g@x.io", "name": "G"}, {"mail": "h@x.io", "name": null}])
    );

    // supabase-js's .insert(...).select().order(...): the returned rows in that order, by a
    // column that is not even returned.
    let a = write(
        &srv,
        Method::POST,
        "/rest/v1/users?select=email&order=name.desc.nullslast",
        &[("Prefer", "return=representation")],
        Some(r#"[{"email":"o1@x.io","name":"A"},{"email":"o2@x.io"},{"email":"o3@x.io","name":"Z"}]"#),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(
        a.json(),
        json!([{"email": "o3@x.io"}, {"email": "o1@x.io"}, {"email": "o2@x.io"}])
    );
    let a = write(
        &srv,
        Method::DELETE,
        "/rest/v1/users?email=like.o*&select=email&order=email.desc",
        &[("Prefer", "return=representation")],
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json(),
        json!([{"email": "o3@x.io"}, {"email": "o2@x.io"}, {"email": "o1@x.io"}])
    );
    let a = write(
        &srv,
        Method::POST,
        "/rest/v1/users?order=nosuch",
        &[("Prefer", "return=representation")],
        Some(r#"{"email":"o4@x.io"}"#),
    )
    .await;
    assert_eq!(
        a.status, 400,
        "an unknown order column is refused: {}",
        a.body
    );
    assert_eq!(
        count().await.as_deref(),
        Some("8"),
        "and nothing is written"
    );

    let a = write(
        &srv,
        Method::POST,
        "/rest/v1/users?select=email",
        &[
            ("Prefer", "return=representation"),
            ("Accept", "application/vnd.pgrst.object+json"),
        ],
        Some(r#"{"email":"i@x.io"}"#),
    )
    .await;
    assert_eq!((a.status, a.json()), (201, json!({"email": "i@x.io"})));

    let a = write(
        &srv,
        Method::POST,
        "/rest/v1/users",
        &[("Prefer", "return=minimal")],
        Some(r#"{"email":"j@x.io"}"#),
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (201, ""));

    let a = write(
        &srv,
        Method::POST,
        "/rest/v1/users",
        &[("Prefer", "return=representation")],
        Some("[]"),
    )
    .await;
    assert_eq!((a.status, a.json()), (201, json!([])));
    let a = write(&srv, Method::POST, "/rest/v1/users", &[], Some("[]")).await;
    assert_eq!((a.status, a.body.as_str()), (201, ""));
    assert_eq!(count().await.as_deref(), Some("10"));

    // `columns=` chooses the columns: other keys are ignored, absent ones are NULL…
    let a = write(
        &srv,
        Method::POST,
        "/rest/v1/users?columns=%22email%22,%22name%22,%22status%22&select=email,name,status",
        &[("Prefer", "return=representation")],
        Some(r#"[{"email":"k@x.io","name":"K","age":99},{"email":"l@x.io","status":"trial"}]"#),
    )
    .await;
    assert_eq!(
        a.json(),
        json!([
            {"email": "k@x.io", "name": "K", "status": null},
            {"email": "l@x.io", "name": null, "status": "trial"}
        ]),
        "{}",
        a.body
    );
    // …or take their default with `missing=default`.
    let a = write(
        &srv,
        Method::POST,
        "/rest/v1/users?columns=email,status&select=email,status",
        &[("Prefer", "return=representation,missing=default")],
        Some(r#"[{"email":"m@x.io"},{"email":"n@x.io","status":"trial"}]"#),
    )
    .await;
    assert_eq!(
        a.json(),
        json!([{"email": "m@x.io", "status": "active"}, {"email": "n@x.io", "status": "trial"}])
    );
}

#[tokio::test]
async fn upserts_merge_or_ignore_duplicates_on_the_conflict_target() {
    let db = TestDb::create(&seed()).await;
    let srv = TestServer::start(&db).await;
    let a = write(
        &srv,
        Method::POST,
        "/rest/v1/users?on_conflict=email&select=email,name",
        &[(
            "Prefer",
            "resolution=merge-duplicates,return=representation",
        )],
        Some(r#"[{"email":"ada@example.com","name":"Ada L"},{"email":"new@x.io","name":"N"}]"#),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(
        a.json(),
        json!([{"email": "ada@example.com", "name": "Ada L"}, {"email": "new@x.io", "name": "N"}])
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM users").await.as_deref(),
        Some("6")
    );

    let a = write(
        &srv,
        Method::POST,
        "/rest/v1/users?on_conflict=email&select=email",
        &[(
            "Prefer",
            "resolution=ignore-duplicates,return=representation",
        )],
        Some(r#"[{"email":"bob@example.com","name":"X"},{"email":"new2@x.io"}]"#),
    )
    .await;
    assert_eq!((a.status, a.json()), (201, json!([{"email": "new2@x.io"}])));
    assert_eq!(
        db.scalar("SELECT name FROM users WHERE id = 2")
            .await
            .as_deref(),
        Some("Bob")
    );

    // Without on_conflict the primary key is the target; the schema comes from Content-Profile.
    let a = write(
        &srv,
        Method::POST,
        "/rest/v1/things",
        &[
            ("Prefer", "resolution=merge-duplicates"),
            ("Content-Profile", "other"),
        ],
        Some(r#"{"id":1,"label":"uno"}"#),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(
        db.scalar("SELECT label FROM other.things WHERE id = 1")
            .await
            .as_deref(),
        Some("uno")
    );
}

#[tokio::test]
async fn patch_and_delete_change_only_the_filtered_rows() {
    let db = TestDb::create(&seed()).await;
    let srv = TestServer::start(&db).await;
    let a = write(
        &srv,
        Method::PATCH,
        "/rest/v1/users?id=eq.2",
        &[],
        Some(r#"{"status":"x"}"#),
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (204, ""));
    assert_eq!(
        db.scalar("SELECT string_agg(status, ',' ORDER BY id) FROM users")
            .await
            .as_deref(),
        Some("active,x,active,banned,active")
    );
    // `order` orders the rows a write returns, as PostgREST 13 does; `limit` stays refused.
    let a = write(
        &srv,
        Method::PATCH,
        "/rest/v1/users?age=eq.25&select=id,state:status&order=id&limit=1",
        &[("Prefer", "return=representation")],
        Some(r#"{"status":"y"}"#),
    )
    .await;
    assert_rest_error(&a, 400, "PGRST100", "invalid_field");
    let a = write(
        &srv,
        Method::PATCH,
        "/rest/v1/users?age=eq.25&select=id,state:status&order=id.desc",
        &[("Prefer", "return=representation")],
        Some(r#"{"status":"y"}"#),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json(),
        json!([{"id": 5, "state": "y"}, {"id": 2, "state": "y"}])
    );

    // The single-object media type commits only a write that touched exactly one row.
    let before = checksum(&db).await;
    let object = [
        ("Prefer", "return=representation"),
        ("Accept", "application/vnd.pgrst.object+json"),
    ];
    let a = write(
        &srv,
        Method::PATCH,
        "/rest/v1/users?status=eq.y",
        &object,
        Some(r#"{"name":"Z"}"#),
    )
    .await;
    assert_rest_error(&a, 406, "PGRST116", "not_one_row");
    let a = write(
        &srv,
        Method::DELETE,
        "/rest/v1/users?id=gt.100",
        &object,
        None,
    )
    .await;
    assert_rest_error(&a, 406, "PGRST116", "not_one_row");
    assert_eq!(checksum(&db).await, before, "nothing changed");
    let a = write(
        &srv,
        Method::PATCH,
        "/rest/v1/users?id=eq.1&select=name",
        &object,
        Some(r#"{"name":"Z"}"#),
    )
    .await;
    assert_eq!((a.status, a.json()), (200, json!({"name": "Z"})));

    let a = write(
        &srv,
        Method::DELETE,
        "/rest/v1/orders?total=lt.10",
        &[],
        None,
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (204, ""));
    let a = write(
        &srv,
        Method::DELETE,
        "/rest/v1/orders?user_id=eq.1&select=total",
        &[("Prefer", "return=representation,count=exact")],
        None,
    )
    .await;
    assert_eq!(
        (a.status, a.json().to_string()),
        (200, r#"[{"total":20.00}]"#.into())
    );
    assert_eq!(a.header("content-range"), Some("0-0/1"));
    assert_eq!(
        db.scalar("SELECT count(*) FROM orders").await.as_deref(),
        Some("1")
    );
}

#[tokio::test]
async fn reads_are_cached_and_every_write_invalidates_them() {
    let db = TestDb::create(&seed()).await;
    let srv = TestServer::start_yaml(&config_yaml(&db.uri, "", "cache:\n  ttl_secs: 60\n")).await;
    let read = |q: &'static str| get(&srv, q);
    let path = "/rest/v1/users?select=name&order=id&status=eq.active";
    let outcome = |a: &Answer| a.header("x-athena-cache").unwrap_or("").to_string();

    let a = read(path).await;
    assert_eq!(
        (outcome(&a), a.names()),
        ("miss".into(), vec!["Ada".into(), "Cy".into(), "Eve".into()])
    );
    let a = read(path).await;
    assert_eq!((outcome(&a), a.names().len()), ("hit".into(), 3));
    let a = read("/rest/v1/users?select=n:name&order=id&status=eq.active").await;
    assert_eq!(outcome(&a), "miss", "another alias is another entry");
    let a = send(request(&srv, Method::GET, path).header("Cache-Control", "no-cache")).await;
    assert_eq!(outcome(&a), "bypass");

    let cases: [(Method, &str, Option<&str>, usize); 3] = [
        (
            Method::POST,
            "/rest/v1/users",
            Some(r#"{"email":"f@x.io","name":"F"}"#),
            4,
        ),
        (
            Method::PATCH,
            "/rest/v1/users?name=eq.F",
            Some(r#"{"status":"gone"}"#),
            3,
        ),
        (Method::DELETE, "/rest/v1/users?name=eq.Cy", None, 2),
    ];
    for (method, write_path, body, expected) in cases {
        let a = read(path).await;
        assert_eq!(outcome(&a), "hit");
        let w = write(&srv, method.clone(), write_path, &[], body).await;
        assert!(w.status < 300, "{method} {}", w.body);
        let a = read(path).await;
        assert_eq!(
            (outcome(&a), a.names().len()),
            ("miss".into(), expected),
            "after {method}"
        );
    }

    // Counts are cached with their total.
    let counted = || {
        send(request(&srv, Method::GET, "/rest/v1/users?limit=1").header("Prefer", "count=exact"))
    };
    let a = counted().await;
    assert_eq!(
        (outcome(&a), a.status, a.header("content-range")),
        ("miss".into(), 206, Some("0-0/5"))
    );
    let a = counted().await;
    assert_eq!(
        (outcome(&a), a.status, a.header("content-range")),
        ("hit".into(), 206, Some("0-0/5"))
    );
}

/// (method, path, body, status, PostgREST code, gateway code)
type Hostile = (
    Method,
    &'static str,
    Option<&'static str>,
    u16,
    &'static str,
    &'static str,
);

/// Hostile requests and the error each must get; `big` is a body over the size limit.
#[rustfmt::skip]
fn hostile_cases(big: &'static str) -> Vec<Hostile> {
    vec![
        (Method::POST, "/rest/v1/users", Some(r#"{"email":"#), 400, "PGRST102", "invalid_json"),
        (Method::POST, "/rest/v1/users", Some(r#""x""#), 400, "PGRST102", "invalid_body"),
        (Method::POST, "/rest/v1/users", Some("42"), 400, "PGRST102", "invalid_body"),
        (Method::POST, "/rest/v1/users", Some(r#"[{"email":"a@x.io"},1]"#), 400, "PGRST102", "invalid_body"),
        (Method::POST, "/rest/v1/users", Some(" "), 400, "PGRST102", "invalid_body"),
        (Method::PATCH, "/rest/v1/users?id=eq.1", Some(r#"[{"name":"x"}]"#), 400, "PGRST102", "invalid_body"),
        (Method::PATCH, "/rest/v1/users?id=eq.1", Some("{}"), 400, "PGRST102", "invalid_body"),
        (Method::POST, "/rest/v1/users", Some(big), 413, "PGRST102", "payload_too_large"),
        (Method::GET, "/rest/v1/nope", None, 404, "42P01", "unknown_table"),
        (Method::POST, "/rest/v1/nope", Some(r#"{"a":1}"#), 404, "42P01", "unknown_table"),
        (Method::DELETE, "/rest/v1/pg_catalog.pg_class?oid=eq.1", None, 404, "42P01", "unknown_table"),
        (Method::GET, "/rest/v1/users?select=nope", None, 400, "42703", "unknown_column"),
        (Method::GET, "/rest/v1/users?nope=eq.1", None, 400, "42703", "unknown_column"),
        (Method::GET, "/rest/v1/users?order=nope.desc", None, 400, "42703", "unknown_column"),
        (Method::POST, "/rest/v1/users", Some(r#"{"email":"z@x.io","nope":1}"#), 400, "42703", "unknown_column"),
        (Method::POST, "/rest/v1/users?columns=email,nope", Some(r#"{"email":"z@x.io"}"#), 400, "42703", "unknown_column"),
        (Method::PATCH, "/rest/v1/users?id=eq.1", Some(r#"{"nope":1}"#), 400, "42703", "unknown_column"),
        (Method::GET, "/rest/v1/users?age=regex.1", None, 400, "PGRST100", "invalid_filter"),
        (Method::GET, "/rest/v1/users?age=fts.1", None, 400, "PGRST100", "invalid_filter"),
        (Method::GET, "/rest/v1/users?age=25", None, 400, "PGRST100", "invalid_filter"),
        (Method::GET, "/rest/v1/users?or=name.eq.Ada", None, 400, "PGRST100", "invalid_filter"),
        (Method::GET, "/rest/v1/users?select=id;drop%20table%20users", None, 400, "42703", "unknown_column"),
        (Method::GET, "/rest/v1/users?select=id,orders(*)", None, 400, "PGRST100", "invalid_field"),
        (Method::GET, "/rest/v1/users?select=id::text", None, 400, "PGRST100", "invalid_field"),
        (Method::GET, "/rest/v1/users?order=id);drop%20table%20users;--", None, 400, "PGRST100", "invalid_field"),
        (Method::GET, "/rest/v1/users?order=id%20desc;drop%20table%20users", None, 400, "42703", "unknown_column"),
        (Method::GET, "/rest/v1/users?select=a'b:id", None, 400, "PGRST100", "invalid_field"),
        (Method::GET, "/rest/v1/users?select=a%22b:id", None, 400, "PGRST100", "invalid_field"),
        (Method::GET, "/rest/v1/users?select=%22a%22%22:id", None, 400, "PGRST100", "invalid_field"),
        (Method::GET, "/rest/v1/users?id=eq.1%20or%201=1", None, 400, "22P02", "invalid_value"),
        (Method::GET, "/rest/v1/users?age=eq.abc", None, 400, "22P02", "invalid_value"),
        (Method::GET, "/rest/v1/users?limit=-1", None, 400, "PGRST100", "invalid_field"),
        (Method::GET, "/rest/v1/users?limit=1;drop", None, 400, "PGRST100", "invalid_field"),
        (Method::PATCH, "/rest/v1/users", Some(r#"{"name":"x"}"#), 400, "21000", "missing_filter"),
        (Method::PATCH, "/rest/v1/users?select=id", Some(r#"{"name":"x"}"#), 400, "21000", "missing_filter"),
        (Method::DELETE, "/rest/v1/users", None, 400, "21000", "missing_filter"),
        (Method::DELETE, "/rest/v1/users?limit=1", None, 400, "PGRST100", "invalid_field"),
        (Method::PATCH, "/rest/v1/users?id=gt.0&limit=1", Some(r#"{"name":"x"}"#), 400, "PGRST100", "invalid_field"),
        (Method::POST, "/rest/v1/users", Some(r#"{"email":"ada@example.com"}"#), 409, "23505", "unique_violation"),
        (Method::POST, "/rest/v1/orders", Some(r#"{"user_id":999,"total":1}"#), 409, "23503", "foreign_key_violation"),
        (Method::POST, "/rest/v1/users", Some(r#"{"name":"no email"}"#), 400, "23502", "not_null_violation"),
        (Method::POST, "/rest/v1/orders", Some(r#"{"user_id":1,"total":-1}"#), 400, "23514", "check_violation"),
        (Method::POST, "/rest/v1/users", Some(r#"{"email":"q@x.io","age":"old"}"#), 400, "22P02", "invalid_value"),
        (Method::PATCH, "/rest/v1/users?id=eq.1", Some(r#"{"email":null}"#), 400, "23502", "not_null_violation"),
        (Method::DELETE, "/rest/v1/users?id=eq.1", None, 409, "23503", "foreign_key_violation"),
        (Method::PUT, "/rest/v1/users?id=eq.1", Some(r#"{"id":1}"#), 405, "PGRST117", "method_not_allowed"),
        (Method::GET, "/rest/v1", None, 404, "PGRST125", "not_found"),
        (Method::GET, "/rest/v1/users/1", None, 404, "PGRST125", "not_found"),
    ]
}

#[tokio::test]
async fn hostile_input_gets_postgrest_errors_and_changes_no_data() {
    let db = TestDb::create(&seed()).await;
    let srv = TestServer::start(&db).await;
    // Over the default limit of 2 MiB.
    let big = format!(
        "[{}]",
        vec![r#"{"email":"x@x.io","name":"aaaaaaaaaa"}"#; 80_000].join(",")
    );
    let big: &'static str = Box::leak(big.into_boxed_str());
    let cases = hostile_cases(big);
    let before = checksum(&db).await;
    let mut failures = Vec::new();
    for (method, path, body, status, code, athena) in cases {
        let a = write(&srv, method.clone(), path, &[], body).await;
        let ok = std::panic::catch_unwind(|| assert_rest_error(&a, status, code, athena));
        if ok.is_err() {
            failures.push(format!(
                "{method} {path}: expected {status} {code} {athena}, got {} {:?} {}",
                a.status,
                a.header("x-athena-error-code"),
                a.body
            ));
        }
    }
    // Headers PostgREST clients send, malformed.
    for (name, value, status, code, athena) in [
        ("Range", "9-0", 416, "PGRST103", "range_not_satisfiable"),
        ("Range", "a-b", 416, "PGRST103", "range_not_satisfiable"),
        ("Prefer", "max-affected=1", 400, "PGRST100", "invalid_field"),
        ("Prefer", "tx=rollback", 400, "PGRST100", "invalid_field"),
        (
            "Accept",
            "application/xml",
            406,
            "PGRST107",
            "not_acceptable",
        ),
    ] {
        let a = send(request(&srv, Method::GET, "/rest/v1/users").header(name, value)).await;
        if std::panic::catch_unwind(|| assert_rest_error(&a, status, code, athena)).is_err() {
            failures.push(format!("{name}: {value}: got {} {}", a.status, a.body));
        }
    }
    // An upsert's conflict target is checked like every other column.
    let a = write(
        &srv,
        Method::POST,
        "/rest/v1/users?on_conflict=nope",
        &[("Prefer", "resolution=merge-duplicates")],
        Some(r#"{"email":"ada@example.com"}"#),
    )
    .await;
    assert_rest_error(&a, 400, "42703", "unknown_column");
    // No client header: the gateway's code, in PostgREST's shape.
    let a = send(srv.http.get(srv.url("/rest/v1/users"))).await;
    assert_rest_error(&a, 400, "missing_client_header", "missing_client_header");
    let a = send(
        srv.http
            .get(srv.url("/rest/v1/users"))
            .header("X-Athena-Client", "nope"),
    )
    .await;
    assert_rest_error(&a, 404, "unknown_client", "unknown_client");
    // Values with quotes are values: nothing matches, nothing breaks.
    for q in [
        "name=eq.x'%29;%20drop%20table%20users;--",
        "name=in.(%22a%5C%22b%22,'c')",
        "name=like.%25'%25",
        "or=(name.eq.%22x'%22,name.eq.%22%5C%22%22)",
    ] {
        let a = get(&srv, &format!("/rest/v1/users?{q}")).await;
        if a.status != 200 || a.body != "[]" {
            failures.push(format!("{q}: got {} {}", a.status, a.body));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checksum(&db).await, before, "hostile input changed data");
    let a = get(&srv, "/rest/v1/users?select=id").await;
    assert_eq!(a.json().as_array().map(Vec::len), Some(5), "still serving");
}

/// Creates a key once the logging database is migrated and the config client is in the catalog.
async fn create_key(srv: &TestServer, rights: &[&str]) -> String {
    let body = json!({"name": "rest", "rights": rights});
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, v) = admin(srv, Method::POST, "/admin/api-keys", Some(body.clone())).await;
        if s.as_u16() == 201 {
            return v["data"]["api_key"].as_str().unwrap().to_string();
        }
        let starting = s.as_u16() == 503 || v["code"] == "unknown_client";
        assert!(
            starting && Instant::now() < deadline,
            "key creation failed: {s} {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_read_key_reads_but_cannot_write_and_keys_come_from_supabase_headers() {
    let db = TestDb::create(&seed()).await;
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
    let reader = create_key(&srv, &["users.read"]).await;
    let writer = create_key(&srv, &["users.read", "users.write"]).await;
    let before = checksum(&db).await;

    let a = get(&srv, "/rest/v1/users?select=id").await;
    assert_rest_error(&a, 401, "PGRST302", "missing_api_key");
    let a =
        send(request(&srv, Method::GET, "/rest/v1/users?select=id").header("apikey", "ath_x.y"))
            .await;
    assert_rest_error(&a, 401, "PGRST301", "invalid_api_key");
    let a = send(request(&srv, Method::GET, "/rest/v1/users?select=id").header("apikey", &reader))
        .await;
    assert_eq!(
        (a.status, a.json().as_array().map(Vec::len)),
        (200, Some(5))
    );
    let a = send(request(&srv, Method::GET, "/rest/v1/users?select=id").bearer_auth(&reader)).await;
    assert_eq!(a.status, 200);
    let a = send(request(&srv, Method::GET, "/rest/v1/orders").header("apikey", &reader)).await;
    assert_rest_error(&a, 403, "42501", "forbidden");

    let with = |key: &str| [("apikey", key.to_string())];
    for (method, path, body) in [
        (
            Method::POST,
            "/rest/v1/users",
            Some(r#"{"email":"r@x.io"}"#),
        ),
        (
            Method::PATCH,
            "/rest/v1/users?id=eq.1",
            Some(r#"{"name":"R"}"#),
        ),
        (Method::DELETE, "/rest/v1/users?id=eq.5", None),
    ] {
        let h = with(&reader);
        let headers: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let a = write(&srv, method.clone(), path, &headers, body).await;
        assert_rest_error(&a, 403, "42501", "forbidden");
    }
    assert_eq!(checksum(&db).await, before, "refused writes changed data");

    let h = with(&writer);
    let headers: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = write(
        &srv,
        Method::POST,
        "/rest/v1/users",
        &headers,
        Some(r#"{"email":"w@x.io"}"#),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = write(
        &srv,
        Method::PATCH,
        "/rest/v1/users?email=eq.w@x.io",
        &headers,
        Some(r#"{"name":"W"}"#),
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.body);
    let a = write(
        &srv,
        Method::DELETE,
        "/rest/v1/users?email=eq.w@x.io",
        &headers,
        None,
    )
    .await;
    assert_rest_error(&a, 403, "42501", "forbidden");
}

#[tokio::test]
async fn the_postgrest_python_client_library_works_against_the_server() {
    let db = TestDb::create(&seed()).await;
    let srv = TestServer::start(&db).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rest_client.py");
    let probe = Command::new("python3")
        .args(["-c", "import postgrest"])
        .output()
        .expect("python3 runs");
    assert!(
        probe.status.success(),
        "the postgrest Python package is missing: run scripts/test.sh (it installs it)\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let base = srv.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &base])
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tests/rest_client.py failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("ok"), "{stdout}");
}
