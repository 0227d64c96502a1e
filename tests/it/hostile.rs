//! Hostile input against the structured gateway routes: SQL in identifiers, operators and filter
//! strings, bodies that are not what they claim to be, oversized and deeply nested payloads, and
//! a wrong JSON type in every field. Every case must answer with its own 4xx code in the error
//! envelope (never a 500, never a non-JSON body) and must leave the data exactly as it was.
//!
//! The cases of one test are all sent before anything is asserted, so that one run reports every
//! case that misbehaves rather than only the first.

use crate::common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// A request and what it must answer.
struct Case {
    method: Method,
    path: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn case(path: &'static str, body: Value, status: u16, code: &'static str) -> Case {
    let method = match path {
        "/gateway/insert" => Method::PUT,
        "/gateway/delete" => Method::DELETE,
        _ => Method::POST,
    };
    Case {
        method,
        path,
        body: body.to_string().into_bytes(),
        status,
        code,
    }
}

fn raw_case(path: &'static str, body: &[u8], status: u16, code: &'static str) -> Case {
    Case {
        method: Method::POST,
        path,
        body: body.to_vec(),
        status,
        code,
    }
}

/// Sends `body` as it is and returns the status and the raw response text.
async fn send_raw(
    srv: &TestServer,
    method: Method,
    path: &str,
    body: Vec<u8>,
    client: Option<&str>,
) -> (u16, String) {
    let mut req = srv
        .http
        .request(method, srv.url(path))
        .header("content-type", "application/json")
        .bearer_auth(ADMIN_KEY)
        .body(body);
    if let Some(c) = client {
        req = req.header("X-Athena-Client", c);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    (status, res.text().await.expect("response body read"))
}

/// Checks one response against its expected status and code; returns a description of every
/// way it differs.
fn verdict(
    what: &str,
    status: u16,
    text: &str,
    want_status: u16,
    want_code: &str,
) -> Option<String> {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Some(format!(
                "{what}: response is not JSON ({e}): {status} {text:?}"
            ))
        }
    };
    let ok = status == want_status
        && v["status"] == "error"
        && v["code"] == want_code
        && v["message"].is_string()
        && v["error"].is_string()
        && v["trace_id"].as_str().is_some_and(|t| !t.is_empty());
    (!ok).then(|| format!("{what}: expected {want_status} {want_code}, got {status} {v}"))
}

fn shorten(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    if s.len() > 160 {
        format!(
            "{}… ({} bytes)",
            s.chars().take(160).collect::<String>(),
            body.len()
        )
    } else {
        s.into_owned()
    }
}

/// Runs every case with `X-Athena-Client: default` and the admin key; returns the failures.
async fn run_cases(srv: &TestServer, cases: Vec<Case>) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases {
        let what = format!("{} {} {}", c.method, c.path, shorten(&c.body));
        let (status, text) = send_raw(srv, c.method, c.path, c.body, Some("default")).await;
        failures.extend(verdict(&what, status, &text, c.status, c.code));
    }
    failures
}

/// Everything hostile input must not change: the list of relations, and the row count and a
/// checksum of every seeded table.
async fn snapshot(db: &TestDb) -> Vec<(String, Option<String>)> {
    let queries = [
        "SELECT string_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text, ',' \
             ORDER BY n.nspname, c.relname) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
           AND n.nspname NOT LIKE 'pg_toast%'",
        "SELECT count(*) FROM users",
        "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM users t",
        "SELECT count(*) FROM orders",
        "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM orders t",
        "SELECT count(*) FROM no_pk",
        "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM no_pk t",
        "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM other.things t",
        "SELECT count(*) FROM pg_roles",
    ];
    let mut out = Vec::with_capacity(queries.len());
    for q in queries {
        out.push((q.to_string(), db.scalar(q).await));
    }
    out
}

/// Fails with every case that answered wrongly and, when the data changed, what changed.
#[track_caller]
fn report(
    before: &[(String, Option<String>)],
    after: &[(String, Option<String>)],
    failures: &[String],
) {
    let changed: Vec<String> = before
        .iter()
        .zip(after)
        .filter(|(b, a)| b != a)
        .map(|((q, b), (_, a))| format!("  {q}\n    before {b:?}\n    after  {a:?}"))
        .collect();
    assert!(
        failures.is_empty() && changed.is_empty(),
        "{} case(s) failed:\n{}\n{}",
        failures.len(),
        failures.join("\n"),
        if changed.is_empty() {
            String::new()
        } else {
            format!("and the data changed:\n{}", changed.join("\n"))
        }
    );
}

/// Seeds, runs `cases`, and asserts every answer and that nothing changed.
async fn assert_cases_change_nothing(cases: Vec<Case>) {
    let db = TestDb::create(&format!(
        "{SEED}\nINSERT INTO no_pk VALUES (1, 'x'), (2, 'y');"
    ))
    .await;
    let srv = TestServer::start(&db).await;
    let before = snapshot(&db).await;
    let failures = run_cases(&srv, cases).await;
    let after = snapshot(&db).await;
    report(&before, &after, &failures);
    // The server is still healthy afterwards.
    let res = srv
        .post("/gateway/fetch", json!({"table_name": "users"}))
        .await;
    assert_eq!(rows(&res).len(), 5);
}

/// A valid body for each route, naming `table`.
fn valid_bodies(table: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("/gateway/fetch", json!({"table_name": table})),
        ("/gateway/data", json!({"table_name": table})),
        (
            "/gateway/insert",
            json!({"table_name": table, "insert_body": {"email": "mallory@example.com", "name": "M"}}),
        ),
        (
            "/gateway/update",
            json!({"table_name": table, "update_body": {"name": "M"}, "conditions": [{"eq_column": "id", "eq_value": 1}]}),
        ),
        (
            "/gateway/delete",
            json!({"table_name": table, "resource_id": 1}),
        ),
    ]
}

#[tokio::test]
async fn sql_in_table_names_is_an_unknown_table_and_changes_nothing() {
    let names = [
        "users; DROP TABLE users",
        "users; DROP TABLE users; --",
        "users\"--",
        "users\" ; DROP TABLE users; --",
        "\"users\"",
        "USERS",
        "users ",
        "users WHERE 1=1",
        "users--",
        "(SELECT * FROM users)",
        "pg_catalog.pg_authid",
        "pg_authid",
        "pg_catalog.pg_class",
        "information_schema.tables",
        "pg_toast.pg_toast_1262",
        "public.users; DROP TABLE users",
        "other.things\"; DROP TABLE users; --",
        "public\".\"users",
        "../users",
        "*",
    ];
    let long_schema = format!("public{}.users", "x".repeat(100));
    let mut cases = Vec::new();
    for name in names.iter().copied().chain([long_schema.as_str()]) {
        for (path, body) in valid_bodies(name) {
            cases.push(case(path, body, 404, "unknown_table"));
        }
    }
    // The same through `schema` and `view_name`.
    for schema in [
        "public; DROP TABLE users",
        "public\"--",
        "pg_catalog",
        "information_schema",
    ] {
        let mut body = json!({"table_name": "users", "schema": schema});
        cases.push(case("/gateway/fetch", body.clone(), 404, "unknown_table"));
        body["insert_body"] = json!({"email": "mallory@example.com"});
        cases.push(case("/gateway/insert", body, 404, "unknown_table"));
        cases.push(case(
            "/gateway/delete",
            json!({"table_name": "users", "schema": schema, "resource_id": 1}),
            404,
            "unknown_table",
        ));
    }
    cases.push(case(
        "/gateway/fetch",
        json!({"view_name": "users; DROP TABLE users"}),
        404,
        "unknown_table",
    ));
    cases.push(case(
        "/gateway/fetch",
        json!({"table_name": "pg_authid", "schema": "pg_catalog", "columns": ["rolname", "rolpassword"]}),
        404,
        "unknown_table",
    ));
    assert_cases_change_nothing(cases).await;
}

#[tokio::test]
async fn sql_in_column_names_is_an_unknown_column_and_changes_nothing() {
    let bad = [
        "name; DROP TABLE users",
        "name\"--",
        "name\" FROM users; DROP TABLE users; --",
        "\"name\"",
        "NAME",
        "(SELECT 1)",
        "pg_sleep(10)",
        "1",
        "users.name",
        "t.name",
        "ctid",
        "xmin",
        "name_followed_by_more_than_the_sixty_three_bytes_postgresql_keeps_of_a_name",
    ];
    let mut cases = Vec::new();
    for col in bad {
        let cond_eq = json!([{"eq_column": col, "eq_value": "Ada"}]);
        let cond_op = json!([{"operator": "eq", "column": col, "value": "Ada"}]);
        let cond_in = json!([{"operator": "in", "column": col, "value": ["Ada"]}]);
        let cond_not = json!([{"operator": "not", "column": col, "value": "eq.Ada"}]);
        // Column lists.
        cases.push(case(
            "/gateway/fetch",
            json!({"table_name": "users", "columns": [col]}),
            400,
            "unknown_column",
        ));
        cases.push(case(
            "/gateway/fetch",
            json!({"table_name": "users", "columns": ["id", col]}),
            400,
            "unknown_column",
        ));
        // Conditions in both dialects, on every route that filters.
        for conditions in [&cond_eq, &cond_op, &cond_in, &cond_not] {
            cases.push(case(
                "/gateway/fetch",
                json!({"table_name": "users", "conditions": conditions}),
                400,
                "unknown_column",
            ));
            cases.push(case(
                "/gateway/update",
                json!({"table_name": "users", "update_body": {"name": "M"}, "conditions": conditions}),
                400,
                "unknown_column",
            ));
            cases.push(case(
                "/gateway/delete",
                json!({"table_name": "users", "conditions": conditions}),
                400,
                "unknown_column",
            ));
        }
        // Ordering.
        for order in [
            json!({"sort_by": {"field": col, "direction": "asc"}}),
            json!({"sort_by": [{"field": "id"}, {"field": col}]}),
            json!({"order_by": [{"column": col, "ascending": false}]}),
        ] {
            let mut body = order;
            body["table_name"] = json!("users");
            cases.push(case("/gateway/fetch", body, 400, "unknown_column"));
        }
        // Insert keys, update keys, upsert targets and returned columns.
        cases.push(case(
            "/gateway/insert",
            json!({"table_name": "users", "insert_body": {"email": "mallory@example.com", col: "x"}}),
            400,
            "unknown_column",
        ));
        cases.push(case(
            "/gateway/insert",
            json!({"table_name": "users", "insert_body": [{"email": "m1@example.com"}, {"email": "m2@example.com", col: "x"}]}),
            400,
            "unknown_column",
        ));
        cases.push(case(
            "/gateway/insert",
            json!({"table_name": "users", "insert_body": {"email": "ada@example.com"}, "on_conflict": [col]}),
            400,
            "unknown_column",
        ));
        cases.push(case(
            "/gateway/insert",
            json!({"table_name": "users", "insert_body": {"email": "ada@example.com"}, "on_conflict": "email", "update_body": {col: "x"}}),
            400,
            "unknown_column",
        ));
        cases.push(case(
            "/gateway/insert",
            json!({"table_name": "users", "insert_body": {"email": "mallory@example.com"}, "columns": [col]}),
            400,
            "unknown_column",
        ));
        cases.push(case(
            "/gateway/update",
            json!({"table_name": "users", "update_body": {col: "x"}, "conditions": [{"eq_column": "id", "eq_value": 1}]}),
            400,
            "unknown_column",
        ));
        cases.push(case(
            "/gateway/update",
            json!({"table_name": "users", "update_body": {"name": "M", col: "x"}, "conditions": [{"eq_column": "id", "eq_value": 1}]}),
            400,
            "unknown_column",
        ));
        cases.push(case(
            "/gateway/update",
            json!({"table_name": "users", "update_body": {"name": "M"}, "conditions": [{"eq_column": "id", "eq_value": 1}], "returning": [col]}),
            400,
            "unknown_column",
        ));
        cases.push(case(
            "/gateway/delete",
            json!({"table_name": "users", "resource_id": 1, "columns": [col]}),
            400,
            "unknown_column",
        ));
    }
    // Comma-separated column strings are split, and every part is checked.
    for columns in [
        "name, pg_sleep(10)",
        "id,name;DROP TABLE users",
        "name,\"name\"",
    ] {
        cases.push(case(
            "/gateway/fetch",
            json!({"table_name": "users", "columns": columns}),
            400,
            "unknown_column",
        ));
    }
    // on_conflict as a string.
    cases.push(case(
        "/gateway/insert",
        json!({"table_name": "users", "insert_body": {"email": "ada@example.com"}, "on_conflict": "email; DROP TABLE users"}),
        400,
        "unknown_column",
    ));
    // order_by strings: a bogus column is unknown; trailing SQL is not a sort direction.
    for order_by in [json!("ctid"), json!(["name\"--"]), json!("id,xmin.desc")] {
        cases.push(case(
            "/gateway/fetch",
            json!({"table_name": "users", "order_by": order_by}),
            400,
            "unknown_column",
        ));
    }
    cases.push(case(
        "/gateway/fetch",
        json!({"table_name": "users", "order_by": "name\"--"}),
        400,
        "unknown_column",
    ));
    cases.push(case(
        "/gateway/fetch",
        json!({"table_name": "users", "order_by": "id;DROP TABLE users"}),
        400,
        "invalid_field",
    ));
    cases.push(case(
        "/gateway/fetch",
        json!({"table_name": "users", "order_by": "id desc; DROP TABLE users"}),
        400,
        "invalid_field",
    ));
    cases.push(case(
        "/gateway/fetch",
        json!({"table_name": "users", "sort_by": {"field": "id", "direction": "asc; DROP TABLE users"}}),
        400,
        "invalid_field",
    ));
    assert_cases_change_nothing(cases).await;
}

#[tokio::test]
async fn sql_in_operators_and_filter_strings_is_an_invalid_filter_and_changes_nothing() {
    let mut cases = Vec::new();
    for op in [
        "eq; drop",
        "eq; DROP TABLE users; --",
        "= ANY",
        "eq'",
        "EQ",
        "",
        "regex",
        "~",
        "between",
        "and;",
    ] {
        let conditions = json!([{"operator": op, "column": "name", "value": "Ada"}]);
        cases.push(case(
            "/gateway/fetch",
            json!({"table_name": "users", "conditions": conditions}),
            400,
            "invalid_filter",
        ));
        cases.push(case(
            "/gateway/update",
            json!({"table_name": "users", "update_body": {"name": "M"}, "conditions": conditions}),
            400,
            "invalid_filter",
        ));
        cases.push(case(
            "/gateway/delete",
            json!({"table_name": "users", "conditions": conditions}),
            400,
            "invalid_filter",
        ));
    }
    let strings: [(&str, &str, &str); 17] = [
        ("or", "name.eq.x);drop table users;--", "invalid_filter"),
        ("or", "name.eq.x));DELETE FROM users;--", "invalid_filter"),
        ("or", "(name.eq.Ada", "invalid_filter"),
        ("or", "name.eq.Ada)", "invalid_filter"),
        ("or", "and(name.eq.Ada", "invalid_filter"),
        ("or", "name.eq.\"Ada", "invalid_filter"),
        ("or", "name.regex.x", "invalid_filter"),
        ("or", "name.eq;drop table users.x", "invalid_filter"),
        ("or", "nameeqAda", "invalid_filter"),
        ("or", ".eq.Ada", "invalid_filter"),
        ("or", "", "invalid_filter"),
        ("or", "()", "invalid_filter"),
        ("or", "nosuch.eq.1", "unknown_column"),
        ("or", "name;DROP TABLE users;--.eq.1", "unknown_column"),
        // A double quote opens a quoted section, which never closes here.
        ("or", "name\";DROP TABLE users;--.eq.1", "invalid_filter"),
        ("and", "name.eq.Ada,users.id.eq.1", "invalid_filter"),
        ("and", "id.gt.0,or(nosuch.eq.1)", "unknown_column"),
    ];
    for (op, value, code) in strings {
        let conditions = json!([{"operator": op, "value": value}]);
        cases.push(case(
            "/gateway/fetch",
            json!({"table_name": "users", "conditions": conditions}),
            400,
            code,
        ));
        cases.push(case(
            "/gateway/update",
            json!({"table_name": "users", "update_body": {"name": "M"}, "conditions": conditions}),
            400,
            code,
        ));
        cases.push(case(
            "/gateway/delete",
            json!({"table_name": "users", "conditions": conditions}),
            400,
            code,
        ));
    }
    let nots: [(Value, &str); 6] = [
        (
            json!({"operator": "not", "value": "name.regex.x"}),
            "invalid_filter",
        ),
        (
            json!({"operator": "not", "value": "nosuch.eq.1"}),
            "unknown_column",
        ),
        (
            json!({"operator": "not", "value": "noseparator"}),
            "invalid_filter",
        ),
        (
            json!({"operator": "not", "column": "name", "value": "regex.x"}),
            "invalid_filter",
        ),
        (
            json!({"operator": "not", "column": "name", "value": "eq"}),
            "invalid_filter",
        ),
        (
            json!({"operator": "not", "column": "name", "value": "in.x,y"}),
            "invalid_filter",
        ),
    ];
    for (cond, code) in nots {
        cases.push(case(
            "/gateway/fetch",
            json!({"table_name": "users", "conditions": [cond.clone()]}),
            400,
            code,
        ));
        cases.push(case(
            "/gateway/delete",
            json!({"table_name": "users", "conditions": [cond]}),
            400,
            code,
        ));
    }
    // An `in` list in a filter string must be parenthesised.
    cases.push(case(
        "/gateway/fetch",
        json!({"table_name": "users", "conditions": [{"operator": "or", "value": "id.in.1,2"}]}),
        400,
        "invalid_filter",
    ));
    assert_cases_change_nothing(cases).await;
}

#[tokio::test]
async fn values_with_quotes_and_sql_are_bound_and_match_nothing() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let before = snapshot(&db).await;
    let injections = [
        "x' OR '1'='1",
        "x' OR 1=1 --",
        "'; DROP TABLE users; --",
        "Ada'; DELETE FROM users; --",
        "\") OR (\"1\"=\"1",
        "x\\' OR 1=1 --",
        "$1",
        "Ada\u{2019} OR 1=1",
    ];
    for v in injections {
        let filters = [
            json!([{"eq_column": "name", "eq_value": v}]),
            json!([{"operator": "eq", "column": "name", "value": v}]),
            json!([{"operator": "like", "column": "name", "value": format!("%{v}")}]),
            json!([{"operator": "ilike", "column": "email", "value": v}]),
            json!([{"operator": "in", "column": "name", "value": [v]}]),
            json!([{"operator": "or", "value": format!("name.eq.\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))}]),
            json!([{"operator": "or", "value": format!("name.in.(\"{}\")", v.replace('\\', "\\\\").replace('"', "\\\""))}]),
        ];
        for conditions in filters {
            let res = srv
                .post(
                    "/gateway/fetch",
                    json!({"table_name": "users", "conditions": conditions}),
                )
                .await;
            assert!(
                rows(&res).is_empty(),
                "{conditions} matched rows: {}",
                res.1
            );
            let res = srv
                .post(
                    "/gateway/update",
                    json!({"table_name": "users", "update_body": {"status": "pwned"}, "conditions": conditions}),
                )
                .await;
            assert!(
                rows(&res).is_empty(),
                "{conditions} updated rows: {}",
                res.1
            );
            let res = srv
                .call(
                    Method::DELETE,
                    "/gateway/delete",
                    Some(json!({"table_name": "users", "conditions": conditions})),
                )
                .await;
            assert!(
                rows(&res).is_empty(),
                "{conditions} deleted rows: {}",
                res.1
            );
        }
    }
    // Against typed columns the same text is not a value of the type at all.
    for v in [
        "1 OR 1=1",
        "1; DROP TABLE users",
        "1) OR (1=1",
        "0 UNION SELECT 1",
    ] {
        // In a filter string an unbalanced parenthesis is a malformed filter before it is a value.
        let in_string = if v.contains(')') {
            "invalid_filter"
        } else {
            "invalid_value"
        };
        assert_error(
            &srv.post(
                "/gateway/fetch",
                json!({"table_name": "users", "conditions": [{"eq_column": "id", "eq_value": v}]}),
            )
            .await,
            400,
            "invalid_value",
        );
        assert_error(
            &srv.call(
                Method::DELETE,
                "/gateway/delete",
                Some(json!({"table_name": "users", "resource_id": v})),
            )
            .await,
            400,
            "invalid_value",
        );
        assert_error(
            &srv.post(
                "/gateway/update",
                json!({"table_name": "users", "update_body": {"status": "pwned"}, "conditions": [{"operator": "or", "value": format!("id.eq.{v}")}]}),
            )
            .await,
            400,
            in_string,
        );
    }
    // Inside a single `not` item the same text is one value: bound, and matching no name.
    let res = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "users", "conditions": [{"operator": "not", "value": "name.eq.x);drop table users;--"}]}),
        )
        .await;
    assert_eq!(rows(&res).len(), 5);
    assert_eq!(before, snapshot(&db).await, "bound values changed the data");

    // Written values are stored verbatim, never interpreted.
    let nasty = "Robert'); DROP TABLE users; -- \"quoted\" \\ $1 %s {}";
    let res = srv
        .call(
            Method::PUT,
            "/gateway/insert",
            Some(json!({"table_name": "users", "insert_body": {"email": nasty, "name": nasty, "status": "x' OR '1'='1"}})),
        )
        .await;
    let id = rows(&res)[0]["id"].clone();
    assert_eq!(rows(&res)[0]["name"], nasty);
    let res = srv
        .post("/gateway/fetch", json!({"table_name": "users", "conditions": [{"eq_column": "name", "eq_value": nasty}]}))
        .await;
    assert_eq!(rows(&res).len(), 1);
    assert_eq!(rows(&res)[0]["email"], nasty);
    assert_eq!(rows(&res)[0]["status"], "x' OR '1'='1");
    assert_eq!(
        db.scalar(&format!("SELECT name FROM users WHERE id = {id}"))
            .await
            .as_deref(),
        Some(nasty)
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM users").await.as_deref(),
        Some("6")
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM users WHERE status = 'x'' OR ''1''=''1'")
            .await
            .as_deref(),
        Some("1"),
        "only the new row carries the literal text"
    );
}

#[tokio::test]
async fn bodies_that_are_not_objects_are_invalid_body() {
    let mut cases = Vec::new();
    for path in [
        "/gateway/fetch",
        "/gateway/insert",
        "/gateway/update",
        "/gateway/delete",
    ] {
        for body in [
            &b"[]"[..],
            b"[{\"table_name\": \"users\"}]",
            b"\"users\"",
            b"42",
            b"-1.5e3",
            b"null",
            b"true",
            b"",
            b"   \n\t ",
        ] {
            let mut c = raw_case(path, body, 400, "invalid_body");
            c.method = if path == "/gateway/insert" {
                Method::PUT
            } else {
                Method::POST
            };
            cases.push(c);
        }
    }
    assert_cases_change_nothing(cases).await;
}

#[tokio::test]
async fn malformed_json_and_invalid_utf8_are_invalid_json() {
    let mut cases = Vec::new();
    let bodies: [&[u8]; 19] = [
        b"{",
        b"{\"table_name\": \"users\"",
        b"{\"table_name\": \"users\",}",
        b"{'table_name': 'users'}",
        b"{table_name: users}",
        b"{\"table_name\": \"users\"} {\"table_name\": \"orders\"}",
        b"{\"table_name\": \"users\"} trailing",
        b"{\"table_name\": \"users\", \"limit\": 01}",
        b"{\"table_name\": \"users\", \"limit\": NaN}",
        b"{\"table_name\": \"users\", \"limit\": Infinity}",
        b"{\"table_name\": \"users\" /* comment */}",
        b"{\"table_name\": \"us\xffers\"}",
        b"{\"table_name\": \"users\", \"x\": \"\xc3\x28\"}",
        b"\xff\xfe{\0\"\0}\0",
        b"\xef\xbb\xbf{\"table_name\": \"users\"}",
        b"{\"table_name\": \"\\ud800\"}",
        b"{\"table_name\": \"\\x41\"}",
        b"{\"table_name\": \"a\nb\"}",
        b"\0",
    ];
    for path in [
        "/gateway/fetch",
        "/gateway/update",
        "/gateway/delete",
        "/gateway/query",
    ] {
        for body in bodies {
            cases.push(raw_case(path, body, 400, "invalid_json"));
        }
    }
    assert_cases_change_nothing(cases).await;
}

#[tokio::test]
async fn a_ten_megabyte_body_is_payload_too_large() {
    // The bodies are built before the server starts, and each goes on a new connection, so that
    // no request races the server closing an idle keep-alive connection.
    let spaces = vec![b' '; 10 * 1024 * 1024];
    let huge_string = format!(
        "{{\"table_name\": \"users\", \"insert_body\": {{\"email\": \"big@example.com\", \"name\": \"{}\"}}}}",
        "a".repeat(10 * 1024 * 1024)
    )
    .into_bytes();
    let many_rows = {
        let row = json!({"email": "x@example.com", "name": "row"});
        let rows: Vec<Value> = std::iter::repeat_n(row, 300_000).collect();
        json!({"table_name": "users", "insert_body": rows})
            .to_string()
            .into_bytes()
    };
    assert!(many_rows.len() > 10 * 1024 * 1024);
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let before = snapshot(&db).await;
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let mut failures = Vec::new();
    for (method, path) in [
        (Method::POST, "/gateway/fetch"),
        (Method::PUT, "/gateway/insert"),
        (Method::POST, "/gateway/update"),
        (Method::DELETE, "/gateway/delete"),
        (Method::POST, "/gateway/query"),
    ] {
        for body in [&spaces, &huge_string, &many_rows] {
            let what = format!("{method} {path} {}", shorten(body));
            let res = fresh
                .request(method.clone(), srv.url(path))
                .header("X-Athena-Client", "default")
                .bearer_auth(ADMIN_KEY)
                .body(body.clone())
                .send()
                .await;
            match res {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.expect("response body read");
                    failures.extend(verdict(&what, status, &text, 413, "payload_too_large"));
                }
                Err(e) => failures.push(format!("{what}: no response: {e:?}")),
            }
        }
    }
    assert_eq!(
        before,
        snapshot(&db).await,
        "an oversized body changed the data"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A body just under the limit is still read and parsed.
    let padded = format!(
        "{{\"table_name\": \"users\"}}{}",
        " ".repeat(2 * 1024 * 1024 - 64)
    );
    let (status, text) = send_raw(
        &srv,
        Method::POST,
        "/gateway/fetch",
        padded.into_bytes(),
        Some("default"),
    )
    .await;
    assert_eq!(status, 200, "{text}");
}

#[tokio::test]
async fn deep_nesting_is_refused_without_exhausting_the_stack() {
    let mut cases = Vec::new();
    // PostgREST strings nested ten thousand levels deep.
    let deep_or = format!("{}name.eq.Ada{}", "or(".repeat(10_000), ")".repeat(10_000));
    let deep_and = format!(
        "{}name.eq.Ada{}",
        "not.and(".repeat(10_000),
        ")".repeat(10_000)
    );
    let deep_parens = format!("{}name.eq.Ada{}", "(".repeat(10_000), ")".repeat(10_000));
    let unclosed = "or(".repeat(10_000);
    let expectations = [
        ("or", &deep_or, "filter_too_deep"),
        ("and", &deep_or, "filter_too_deep"),
        ("not", &deep_or, "filter_too_deep"),
        ("or", &deep_and, "filter_too_deep"),
        ("and", &deep_and, "filter_too_deep"),
        ("not", &deep_and, "filter_too_deep"),
        ("or", &deep_parens, "filter_too_deep"),
        ("and", &deep_parens, "filter_too_deep"),
        // A single `not` item is `column.op.value`: here the "column" is all parentheses.
        ("not", &deep_parens, "unknown_column"),
        ("or", &unclosed, "filter_too_deep"),
        ("and", &unclosed, "filter_too_deep"),
        ("not", &unclosed, "invalid_filter"),
    ];
    for (op, value, code) in expectations {
        let conditions = json!([{"operator": op, "value": value}]);
        cases.push(case(
            "/gateway/fetch",
            json!({"table_name": "users", "conditions": conditions}),
            400,
            code,
        ));
        cases.push(case(
            "/gateway/delete",
            json!({"table_name": "users", "conditions": conditions}),
            400,
            code,
        ));
    }
    // Just past the limit is refused, at the limit it is accepted (checked below).
    let mut nested = json!({"operator": "eq", "column": "name", "value": "Ada"});
    for _ in 0..20 {
        nested = json!({"operator": "or", "value": [nested]});
    }
    cases.push(case(
        "/gateway/fetch",
        json!({"table_name": "users", "conditions": [nested.clone()]}),
        400,
        "filter_too_deep",
    ));
    cases.push(case(
        "/gateway/update",
        json!({"table_name": "users", "update_body": {"name": "M"}, "conditions": [nested]}),
        400,
        "filter_too_deep",
    ));
    let mut nested_not = json!({"operator": "eq", "column": "name", "value": "Ada"});
    for _ in 0..20 {
        nested_not = json!({"operator": "not", "value": nested_not});
    }
    cases.push(case(
        "/gateway/delete",
        json!({"table_name": "users", "conditions": [nested_not]}),
        400,
        "filter_too_deep",
    ));
    // JSON nested past serde_json's recursion limit.
    let deep_arrays = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_in_field = format!(
        "{{\"table_name\": \"users\", \"conditions\": {}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let deep_objects = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let deep_unclosed = "[".repeat(1_000_000);
    for body in [&deep_arrays, &deep_in_field, &deep_objects, &deep_unclosed] {
        for path in ["/gateway/fetch", "/gateway/update", "/gateway/query"] {
            cases.push(raw_case(path, body.as_bytes(), 400, "invalid_json"));
        }
    }
    assert_cases_change_nothing(cases).await;
}

#[tokio::test]
async fn filters_at_the_depth_limit_and_very_wide_filters_still_work() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let mut s = String::from("name.eq.Ada");
    for _ in 0..10 {
        s = format!("or({s},name.eq.Bob)");
    }
    let res = srv
        .post("/gateway/fetch", json!({"table_name": "users", "conditions": [{"operator": "or", "value": s}], "order_by": "id"}))
        .await;
    assert_eq!(rows(&res).len(), 2);
    // Thousands of alternatives are fine: they are wide, not deep.
    let wide = (0..5000)
        .map(|i| format!("id.eq.{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let res = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "users", "conditions": [{"operator": "or", "value": wide}]}),
        )
        .await;
    assert_eq!(rows(&res).len(), 5);
    let list: Vec<i64> = (0..50_000).collect();
    let res = srv
        .post("/gateway/fetch", json!({"table_name": "users", "conditions": [{"operator": "in", "column": "id", "value": list}]}))
        .await;
    assert_eq!(rows(&res).len(), 5);
}

#[tokio::test]
async fn more_bind_parameters_than_postgres_allows_is_a_client_error() {
    // PostgreSQL takes at most 65535 parameters per statement. A request needing more is the
    // caller's mistake: a 400 naming the limit, not a 500, and not a 503 that marks a healthy
    // database unavailable for every other caller.
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let before = snapshot(&db).await;
    let wide = (0..70_000)
        .map(|i| format!("id.eq.{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let many_rows: Vec<Value> = (0..70_000)
        .map(|i| json!({"email": format!("{i}@x")}))
        .collect();
    let requests = [
        (
            Method::POST,
            "/gateway/fetch",
            json!({"table_name": "users", "conditions": [{"operator": "or", "value": wide}]}),
        ),
        (
            Method::PUT,
            "/gateway/insert",
            json!({"table_name": "users", "insert_body": many_rows}),
        ),
        (
            Method::DELETE,
            "/gateway/delete",
            json!({"table_name": "users", "conditions": [{"operator": "or", "value": wide}]}),
        ),
        (
            Method::POST,
            "/gateway/update",
            json!({"table_name": "users", "update_body": {"status": "x"}, "conditions": [{"operator": "or", "value": wide}]}),
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body) in requests {
        let what = format!("{method} {path} with 70000 parameters");
        let (status, text) = send_raw(
            &srv,
            method,
            path,
            body.to_string().into_bytes(),
            Some("default"),
        )
        .await;
        failures.extend(verdict(&what, status, &text, 400, "limit_exceeded"));
        // The database is still online for the next request.
        let res = srv
            .post("/gateway/fetch", json!({"table_name": "users"}))
            .await;
        if res.0.as_u16() != 200 {
            failures.push(format!(
                "after {what}: the next fetch got {} {}",
                res.0, res.1
            ));
        }
    }
    let after = snapshot(&db).await;
    report(&before, &after, &failures);
}

#[tokio::test]
async fn wrong_json_types_in_every_field_are_refused_by_name() {
    let u = "users";
    let id1 = json!([{"eq_column": "id", "eq_value": 1}]);
    let f = "/gateway/fetch";
    let i = "/gateway/insert";
    let up = "/gateway/update";
    let d = "/gateway/delete";
    let q = "/gateway/query";
    let table: Vec<(Value, &str)> = vec![
        (json!({"table_name": 5}), "invalid_field"),
        (json!({"table_name": ["users"]}), "invalid_field"),
        (json!({"table_name": {"name": "users"}}), "invalid_field"),
        (json!({"table_name": true}), "invalid_field"),
        (json!({"table_name": ""}), "invalid_field"),
        (json!({"table_name": "   "}), "invalid_field"),
        (json!({}), "missing_field"),
        (json!({"table_name": null}), "missing_field"),
        (json!({"view_name": 5}), "invalid_field"),
        (json!({"table_name": "users", "schema": 5}), "invalid_field"),
    ];
    let mut cases = Vec::new();
    for (body, code) in table {
        cases.push(case(f, body.clone(), 400, code));
        let mut b = body.clone();
        b["insert_body"] = json!({"email": "m@example.com"});
        cases.push(case(i, b, 400, code));
        let mut b = body.clone();
        b["update_body"] = json!({"name": "M"});
        b["conditions"] = id1.clone();
        cases.push(case(up, b, 400, code));
        let mut b = body;
        b["resource_id"] = json!(1);
        cases.push(case(d, b, 400, code));
    }
    let fetch: Vec<(Value, &str)> = vec![
        (json!({"columns": {"name": true}}), "invalid_field"),
        (json!({"columns": 5}), "invalid_field"),
        (json!({"columns": true}), "invalid_field"),
        (json!({"columns": [1, 2]}), "invalid_field"),
        (json!({"columns": ["name", null]}), "invalid_field"),
        (json!({"columns": [["name"]]}), "invalid_field"),
        (json!({"conditions": "id = 1"}), "invalid_field"),
        (json!({"conditions": 5}), "invalid_field"),
        (json!({"conditions": true}), "invalid_field"),
        (json!({"conditions": ["id = 1"]}), "invalid_field"),
        (json!({"conditions": [5]}), "invalid_field"),
        (json!({"conditions": [null]}), "invalid_field"),
        (json!({"conditions": [[]]}), "invalid_field"),
        (json!({"conditions": [{}]}), "invalid_field"),
        (
            json!({"conditions": [{"column": "id", "value": 1}]}),
            "invalid_field",
        ),
        (
            json!({"conditions": [{"eq_column": 5, "eq_value": 1}]}),
            "invalid_field",
        ),
        (
            json!({"conditions": [{"eq_column": "", "eq_value": 1}]}),
            "invalid_field",
        ),
        (
            json!({"conditions": [{"eq_column": ["id"], "eq_value": 1}]}),
            "invalid_field",
        ),
        (
            json!({"conditions": [{"eq_column": "id"}]}),
            "missing_field",
        ),
        (
            json!({"conditions": [{"operator": 5, "column": "id", "value": 1}]}),
            "invalid_field",
        ),
        (
            json!({"conditions": [{"operator": ["eq"], "column": "id", "value": 1}]}),
            "invalid_field",
        ),
        (
            json!({"conditions": [{"operator": "eq", "column": 5, "value": 1}]}),
            "invalid_field",
        ),
        (
            json!({"conditions": [{"operator": "eq", "column": "", "value": 1}]}),
            "invalid_field",
        ),
        (
            json!({"conditions": [{"operator": "eq", "value": 1}]}),
            "missing_field",
        ),
        (
            json!({"conditions": [{"operator": "eq", "column": "id"}]}),
            "missing_field",
        ),
        (
            json!({"conditions": [{"operator": "or", "value": 5}]}),
            "invalid_field",
        ),
        (json!({"conditions": [{"operator": "or"}]}), "invalid_field"),
        (
            json!({"conditions": [{"operator": "or", "value": [5]}]}),
            "invalid_field",
        ),
        (
            json!({"conditions": [{"operator": "not", "value": 5}]}),
            "invalid_field",
        ),
        (
            json!({"conditions": [{"operator": "not", "column": "id", "value": [1]}]}),
            "invalid_field",
        ),
        (json!({"limit": "10"}), "invalid_field"),
        (json!({"limit": -1}), "invalid_field"),
        (json!({"limit": 1.5}), "invalid_field"),
        (json!({"limit": true}), "invalid_field"),
        (json!({"limit": [10]}), "invalid_field"),
        (json!({"offset": "5"}), "invalid_field"),
        (json!({"offset": -5}), "invalid_field"),
        (json!({"offset": 0.5}), "invalid_field"),
        (
            json!({"offset": 9_223_372_036_854_775_808u64}),
            "invalid_field",
        ),
        (json!({"offset": u64::MAX}), "invalid_field"),
        (json!({"current_page": 0}), "invalid_field"),
        (json!({"current_page": "1"}), "invalid_field"),
        (json!({"current_page": -1}), "invalid_field"),
        (
            json!({"current_page": u64::MAX, "page_size": 10}),
            "invalid_field",
        ),
        (json!({"page_size": 0}), "invalid_field"),
        (json!({"page_size": "10"}), "invalid_field"),
        (json!({"page_size": -10}), "invalid_field"),
        (json!({"count": 5}), "invalid_field"),
        (json!({"count": "estimated"}), "invalid_field"),
        (json!({"count": ["exact"]}), "invalid_field"),
        (json!({"sort_by": 5}), "invalid_field"),
        (json!({"sort_by": true}), "invalid_field"),
        (json!({"sort_by": {"direction": "asc"}}), "invalid_field"),
        (json!({"sort_by": {"field": 5}}), "invalid_field"),
        (json!({"sort_by": {"field": ""}}), "invalid_field"),
        (
            json!({"sort_by": {"field": "id", "direction": 5}}),
            "invalid_field",
        ),
        (
            json!({"sort_by": {"field": "id", "direction": "sideways"}}),
            "invalid_field",
        ),
        (json!({"sort_by": [5]}), "invalid_field"),
        (json!({"order_by": 5}), "invalid_field"),
        (
            json!({"order_by": [{"column": "id", "ascending": "yes"}]}),
            "invalid_field",
        ),
        (
            json!({"order_by": [{"column": "id", "nulls_first": "yes"}]}),
            "invalid_field",
        ),
        (json!({"order_by": "id.sideways"}), "invalid_field"),
    ];
    for (mut body, code) in fetch {
        body["table_name"] = json!(u);
        cases.push(case(f, body, 400, code));
    }
    // Numbers JSON allows but no limit can be.
    for raw in [
        &br#"{"table_name": "users", "limit": 1e400}"#[..],
        br#"{"table_name": "users", "limit": 99999999999999999999999999}"#,
        br#"{"table_name": "users", "limit": 1E2}"#,
        br#"{"table_name": "users", "offset": -0.0}"#,
        br#"{"table_name": "users", "current_page": 1.0}"#,
    ] {
        cases.push(raw_case(f, raw, 400, "invalid_field"));
    }
    let insert: Vec<(Value, &str)> = vec![
        (json!({}), "missing_field"),
        (json!({"insert_body": null}), "missing_field"),
        (json!({"insert_body": "email=x"}), "invalid_field"),
        (json!({"insert_body": 5}), "invalid_field"),
        (json!({"insert_body": true}), "invalid_field"),
        (json!({"insert_body": []}), "invalid_field"),
        (json!({"insert_body": [1, 2, 3]}), "invalid_field"),
        (json!({"insert_body": [{}, {}]}), "invalid_query"),
        (
            json!({"insert_body": [{"email": "a@x"}, 5]}),
            "invalid_field",
        ),
        (
            json!({"insert_body": [{"email": "a@x"}, null]}),
            "invalid_field",
        ),
        (
            json!({"insert_body": [[{"email": "a@x"}]]}),
            "invalid_field",
        ),
        (json!({"data": "email=x"}), "invalid_field"),
        (
            json!({"insert_body": {"email": "a@x"}, "on_conflict": 5}),
            "invalid_field",
        ),
        (
            json!({"insert_body": {"email": "a@x"}, "on_conflict": true}),
            "invalid_field",
        ),
        (
            json!({"insert_body": {"email": "a@x"}, "on_conflict": {"email": 1}}),
            "invalid_field",
        ),
        (
            json!({"insert_body": {"email": "a@x"}, "on_conflict": [1]}),
            "invalid_field",
        ),
        (
            json!({"insert_body": {"email": "a@x"}, "on_conflict": "*"}),
            "invalid_field",
        ),
        (
            json!({"insert_body": {"email": "a@x"}, "on_conflict": "email", "update_body": [{"name": "x"}]}),
            "invalid_field",
        ),
        (
            json!({"insert_body": {"email": "a@x"}, "on_conflict": "email", "update_body": "name=x"}),
            "invalid_field",
        ),
        (
            json!({"insert_body": {"email": "a@x"}, "default_to_null": "yes"}),
            "invalid_field",
        ),
        (
            json!({"insert_body": {"email": "a@x"}, "default_to_null": 1}),
            "invalid_field",
        ),
        (
            json!({"insert_body": {"email": "a@x"}, "ignore_duplicates": "true"}),
            "invalid_field",
        ),
        (
            json!({"insert_body": {"email": "a@x"}, "columns": 5}),
            "invalid_field",
        ),
        (
            json!({"insert_body": {"email": "a@x"}, "columns": [1]}),
            "invalid_field",
        ),
        // Values of the wrong shape for their column.
        (json!({"insert_body": {"email": {"a": 1}}}), "invalid_value"),
        (json!({"insert_body": {"email": ["a@x"]}}), "invalid_value"),
        (
            json!({"insert_body": {"email": "a@x", "age": "old"}}),
            "invalid_value",
        ),
        (
            json!({"insert_body": {"email": "a@x", "age": {"years": 3}}}),
            "invalid_value",
        ),
        (
            json!({"insert_body": {"email": "a@x", "age": 1.5}}),
            "invalid_value",
        ),
        (
            json!({"insert_body": {"email": "a@x", "age": 99_999_999_999u64}}),
            "invalid_value",
        ),
        (
            json!({"insert_body": {"email": "a@x", "created_at": "soon"}}),
            "invalid_value",
        ),
        (
            json!({"insert_body": {"email": "a@x", "score": "NaNaN"}}),
            "invalid_value",
        ),
        (
            json!({"insert_body": {"email": "a@x", "name": "nul\u{0}byte"}}),
            "invalid_value",
        ),
    ];
    for (mut body, code) in insert {
        body["table_name"] = json!(u);
        cases.push(case(i, body, 400, code));
    }
    let update: Vec<(Value, &str)> = vec![
        (json!({"conditions": id1}), "missing_field"),
        (
            json!({"update_body": null, "conditions": id1}),
            "missing_field",
        ),
        (
            json!({"update_body": [{"name": "M"}], "conditions": id1}),
            "invalid_field",
        ),
        (
            json!({"update_body": "name = 'M'", "conditions": id1}),
            "invalid_field",
        ),
        (
            json!({"update_body": 5, "conditions": id1}),
            "invalid_field",
        ),
        (
            json!({"update_body": {}, "conditions": id1}),
            "invalid_field",
        ),
        (json!({"set": [1], "conditions": id1}), "invalid_field"),
        (json!({"data": "x", "conditions": id1}), "invalid_field"),
        (
            json!({"update_body": {"name": "M"}, "conditions": "id = 1"}),
            "invalid_field",
        ),
        (
            json!({"update_body": {"name": "M"}, "conditions": [5]}),
            "invalid_field",
        ),
        (
            json!({"update_body": {"name": "M"}, "conditions": id1, "returning": 5}),
            "invalid_field",
        ),
        (
            json!({"update_body": {"name": "M"}, "conditions": id1, "columns": 5}),
            "invalid_field",
        ),
        (
            json!({"update_body": {"age": "old"}, "conditions": id1}),
            "invalid_value",
        ),
        (
            json!({"update_body": {"age": [1]}, "conditions": id1}),
            "invalid_value",
        ),
        (
            json!({"update_body": {"name": {"first": "M"}}, "conditions": id1}),
            "invalid_value",
        ),
        (
            json!({"update_body": {"email": null}, "conditions": id1}),
            "not_null_violation",
        ),
    ];
    for (mut body, code) in update {
        body["table_name"] = json!(u);
        let status = if code == "not_null_violation" {
            422
        } else {
            400
        };
        cases.push(case(up, body, status, code));
    }
    let delete: Vec<(Value, &str)> = vec![
        (json!({"resource_id": [1]}), "invalid_field"),
        (json!({"resource_id": [1, 2]}), "invalid_field"),
        (json!({"resource_id": ""}), "invalid_field"),
        (json!({"resource_id": true}), "invalid_value"),
        (json!({"resource_id": 1.5}), "invalid_value"),
        (json!({"resource_id": "one"}), "invalid_value"),
        (json!({"resource_id": {"id": [1]}}), "invalid_value"),
        (json!({"resource_id": {"id": {"eq": 1}}}), "invalid_value"),
        (json!({"resource_id": {"nope": 1}}), "invalid_value"),
        (json!({"resource_id": {"id": null}}), "invalid_value"),
        (
            json!({"resource_id": 1, "conditions": "id = 1"}),
            "invalid_field",
        ),
        (json!({"conditions": {"eq_column": "id"}}), "missing_field"),
        (
            json!({"resource_id": 1, "columns": {"id": 1}}),
            "invalid_field",
        ),
    ];
    for (mut body, code) in delete {
        body["table_name"] = json!(u);
        cases.push(case(d, body, 400, code));
    }
    cases.push(case(
        d,
        json!({"table_name": "no_pk", "resource_id": 1}),
        400,
        "no_primary_key",
    ));
    let query: Vec<(Value, &str)> = vec![
        (json!({}), "missing_field"),
        (json!({"query": null}), "missing_field"),
        (json!({"query": 5}), "invalid_field"),
        (json!({"query": ["DELETE FROM users"]}), "invalid_field"),
        (
            json!({"query": {"sql": "DELETE FROM users"}}),
            "invalid_field",
        ),
        (json!({"query": ""}), "invalid_field"),
        (json!({"query": "  ;  "}), "invalid_query"),
        (
            json!({"query": "SELECT $1::int", "params": {"1": 5}}),
            "invalid_field",
        ),
        (
            json!({"query": "SELECT $1::int", "params": "5"}),
            "invalid_field",
        ),
        (
            json!({"query": "SELECT $1::int", "params": 5}),
            "invalid_field",
        ),
        (
            json!({"query": "SELECT $1::int", "params": ["five"]}),
            "invalid_value",
        ),
        (
            json!({"query": "SELECT $1::int", "params": []}),
            "invalid_query",
        ),
    ];
    for (body, code) in query {
        cases.push(case(q, body, 400, code));
    }
    assert_cases_change_nothing(cases).await;
}

#[tokio::test]
async fn update_and_delete_without_a_filter_are_refused_and_change_nothing() {
    let u = "users";
    let mut cases = Vec::new();
    for body in [
        json!({"table_name": u, "update_body": {"status": "gone"}}),
        json!({"table_name": u, "update_body": {"status": "gone"}, "conditions": []}),
        json!({"table_name": u, "update_body": {"status": "gone"}, "conditions": null}),
        json!({"table_name": u, "set": {"status": "gone"}}),
        json!({"table_name": u, "columns": [{"status": "gone"}]}),
        json!({"table_name": "no_pk", "update_body": {"b": "gone"}}),
    ] {
        cases.push(case("/gateway/update", body, 400, "missing_filter"));
    }
    for body in [
        json!({"table_name": u}),
        json!({"table_name": u, "conditions": []}),
        json!({"table_name": u, "conditions": null}),
        json!({"table_name": u, "resource_id": null}),
        json!({"table_name": u, "resource_id": null, "conditions": []}),
        json!({"table_name": "no_pk"}),
        json!({"table_name": "orders", "columns": ["order_id"]}),
    ] {
        cases.push(case("/gateway/delete", body.clone(), 400, "missing_filter"));
        let mut c = case("/gateway/delete", body, 400, "missing_filter");
        c.method = Method::POST;
        cases.push(c);
    }
    assert_cases_change_nothing(cases).await;
}

#[tokio::test]
async fn routing_errors_have_their_own_codes() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let before = snapshot(&db).await;
    let body = || {
        json!({"table_name": "users", "update_body": {"status": "gone"}, "conditions": [{"eq_column": "id", "eq_value": 1}]}).to_string().into_bytes()
    };
    let mut failures = Vec::new();
    let mut check = |what: &str, (status, text): (u16, String), want: u16, code: &str| {
        failures.extend(verdict(what, status, &text, want, code));
    };
    for path in [
        "/gateway/fetch",
        "/gateway/update",
        "/gateway/delete",
        "/gateway/query",
    ] {
        let r = send_raw(&srv, Method::POST, path, body(), None).await;
        check(
            &format!("{path} without X-Athena-Client"),
            r,
            400,
            "missing_client_header",
        );
        for client in ["", "   "] {
            let r = send_raw(&srv, Method::POST, path, body(), Some(client)).await;
            check(
                &format!("{path} with X-Athena-Client {client:?}"),
                r,
                400,
                "missing_client_header",
            );
        }
        for client in [
            "nope",
            "default; DROP TABLE users",
            "default2",
            "default\"--",
            "../default",
        ] {
            let r = send_raw(&srv, Method::POST, path, body(), Some(client)).await;
            check(
                &format!("{path} with X-Athena-Client {client:?}"),
                r,
                404,
                "unknown_client",
            );
        }
    }
    // A header value that is not visible ASCII is named as the field at fault.
    let r = srv
        .http
        .post(srv.url("/gateway/fetch"))
        .header(
            "X-Athena-Client",
            reqwest::header::HeaderValue::from_bytes(b"d\xe9fault").unwrap(),
        )
        .body(r#"{"table_name": "users"}"#)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    check(
        "X-Athena-Client with a Latin-1 byte",
        (status, r.text().await.unwrap()),
        400,
        "invalid_field",
    );
    for (method, path) in [
        (Method::GET, "/nope"),
        (Method::POST, "/gateway"),
        (Method::POST, "/gateway/fetch/"),
        (Method::POST, "/gateway/fetch/users"),
        (Method::POST, "/gateway/FETCH"),
        (Method::POST, "/gateway/drop"),
        (Method::GET, "/gateway/../admin"),
        (Method::GET, "/%00"),
        (Method::GET, "/gateway/fetch%3Bdrop"),
    ] {
        let r = send_raw(&srv, method.clone(), path, Vec::new(), Some("default")).await;
        check(&format!("{method} {path}"), r, 404, "not_found");
    }
    for (method, path) in [
        (Method::GET, "/gateway/fetch"),
        (Method::PUT, "/gateway/fetch"),
        (Method::DELETE, "/gateway/fetch"),
        (Method::GET, "/gateway/insert"),
        (Method::DELETE, "/gateway/insert"),
        (Method::GET, "/gateway/update"),
        (Method::PUT, "/gateway/update"),
        (Method::PATCH, "/gateway/update"),
        (Method::GET, "/gateway/delete"),
        (Method::PUT, "/gateway/delete"),
        (Method::GET, "/gateway/query"),
        (Method::POST, "/health"),
    ] {
        let r = send_raw(&srv, method.clone(), path, body(), Some("default")).await;
        check(&format!("{method} {path}"), r, 405, "method_not_allowed");
    }
    // Raw SQL needs the admin key: without it or with a wrong one nothing runs.
    let drop = || {
        json!({"query": "DROP TABLE users CASCADE"})
            .to_string()
            .into_bytes()
    };
    for (header, value, code) in [
        (None, "", "missing_api_key"),
        (Some("authorization"), "Bearer wrong", "invalid_api_key"),
        (Some("authorization"), "Bearer ", "missing_api_key"),
        (
            Some("apikey"),
            "test-admin-key-012345678",
            "invalid_api_key",
        ),
        (
            Some("x-api-key"),
            "test-admin-key-01234567890",
            "invalid_api_key",
        ),
        (Some("x-athena-key"), "' OR '1'='1", "invalid_api_key"),
    ] {
        for path in ["/gateway/query", "/query/sql"] {
            let mut req = srv
                .http
                .post(srv.url(path))
                .header("X-Athena-Client", "default")
                .body(drop());
            if let Some(h) = header {
                req = req.header(h, value);
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            check(
                &format!("{path} with {header:?}: {value:?}"),
                (status, r.text().await.unwrap()),
                401,
                code,
            );
        }
    }
    let after = snapshot(&db).await;
    report(&before, &after, &failures);
}

#[tokio::test]
async fn table_names_postgres_cannot_hold_are_refused() {
    // No table is named with more than 63 bytes (PostgreSQL's NAMEDATALEN), so such a name is an
    // unknown table. A NUL character is refused at the edge, before any name is looked up, as
    // it is in every other text of a body.
    let mut cases = Vec::new();
    let long = format!("users{}", "x".repeat(100));
    for (path, body) in valid_bodies(&long) {
        cases.push(case(path, body, 404, "unknown_table"));
    }
    for name in ["users\u{0}", "users\u{0}; DROP TABLE users"] {
        for (path, body) in valid_bodies(name) {
            cases.push(case(path, body, 400, "invalid_value"));
        }
    }
    for schema in ["public\u{0}", "other\u{0}"] {
        cases.push(case(
            "/gateway/fetch",
            json!({"table_name": "users", "schema": schema}),
            400,
            "invalid_value",
        ));
    }
    assert_cases_change_nothing(cases).await;
}

#[tokio::test]
async fn a_star_beside_a_bogus_column_does_not_hide_it() {
    let cases = vec![
        case(
            "/gateway/fetch",
            json!({"table_name": "users", "columns": ["*", "name; DROP TABLE users"]}),
            400,
            "unknown_column",
        ),
        case(
            "/gateway/fetch",
            json!({"table_name": "users", "columns": "*, pg_sleep(10)"}),
            400,
            "unknown_column",
        ),
        case(
            "/gateway/insert",
            json!({"table_name": "users", "insert_body": {"email": "m@example.com"}, "columns": ["*", "nosuch"]}),
            400,
            "unknown_column",
        ),
        case(
            "/gateway/delete",
            json!({"table_name": "users", "resource_id": 5, "columns": "*,nosuch"}),
            400,
            "unknown_column",
        ),
    ];
    assert_cases_change_nothing(cases).await;
}

#[tokio::test]
async fn nul_bytes_in_column_names_and_values_are_client_errors() {
    let mut cases = Vec::new();
    cases.push(case(
        "/gateway/fetch",
        json!({"table_name": "users", "columns": ["name\u{0}"]}),
        400,
        "invalid_value",
    ));
    cases.push(case(
        "/gateway/fetch",
        json!({"table_name": "users", "conditions": [{"eq_column": "name", "eq_value": "Ada\u{0}"}]}),
        400,
        "invalid_value",
    ));
    cases.push(case(
        "/gateway/fetch",
        json!({"table_name": "users", "conditions": [{"operator": "like", "column": "name", "value": "%\u{0}%"}]}),
        400,
        "invalid_value",
    ));
    cases.push(case(
        "/gateway/update",
        json!({"table_name": "users", "update_body": {"name": "\u{0}"}, "conditions": [{"eq_column": "id", "eq_value": 1}]}),
        400,
        "invalid_value",
    ));
    assert_cases_change_nothing(cases).await;
}
