//! Every common PostgreSQL type through the gateway's JSON, both ways: a value inserted through
//! `/gateway/insert` is returned unchanged, found again by an `eq` filter on the same value, read
//! back through `/gateway/fetch`, and replaced through `/gateway/update`. Values are compared as
//! JSON text, so a numeric keeps every digit and a float keeps its exact spelling.

use crate::common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const TYPES_SEED: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'it''s "complicated"');
CREATE TABLE typed (
    id serial PRIMARY KEY,
    c_int2 int2,
    c_int4 int4,
    c_int8 int8,
    c_numeric numeric,
    c_numeric_10_2 numeric(10,2),
    c_float4 float4,
    c_float8 float8,
    c_bool bool,
    c_text text,
    c_varchar varchar(20),
    c_char char(3),
    c_uuid uuid,
    c_json json,
    c_jsonb jsonb,
    c_date date,
    c_time time,
    c_timestamp timestamp,
    c_timestamptz timestamptz,
    c_interval interval,
    c_bytea bytea,
    c_int4_arr int4[],
    c_text_arr text[],
    c_int_2d int[][],
    c_jsonb_arr jsonb[],
    c_mood mood
);
"#;

/// Every value column of `typed`.
const COLUMNS: [&str; 25] = [
    "c_int2",
    "c_int4",
    "c_int8",
    "c_numeric",
    "c_numeric_10_2",
    "c_float4",
    "c_float8",
    "c_bool",
    "c_text",
    "c_varchar",
    "c_char",
    "c_uuid",
    "c_json",
    "c_jsonb",
    "c_date",
    "c_time",
    "c_timestamp",
    "c_timestamptz",
    "c_interval",
    "c_bytea",
    "c_int4_arr",
    "c_text_arr",
    "c_int_2d",
    "c_jsonb_arr",
    "c_mood",
];

/// A database with the typed table whose connections render times in UTC with the default
/// interval style, whatever the server's own settings are.
async fn typed_db() -> TestDb {
    let db = TestDb::create(TYPES_SEED).await;
    db.execute(&format!(
        "ALTER DATABASE {0} SET timezone TO 'UTC'; ALTER DATABASE {0} SET intervalstyle TO 'postgres';",
        db.name
    ))
    .await;
    db
}

/// Sends a body given as JSON text (so that numbers travel with exactly the digits written) and
/// returns the status, the raw response text and the parsed response.
async fn send(
    srv: &TestServer,
    method: Method,
    path: &str,
    body: &str,
) -> (StatusCode, String, Value) {
    let res = srv
        .http
        .request(method, srv.url(path))
        .header("X-Athena-Client", "default")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request sent");
    let status = res.status();
    let text = res.text().await.expect("body read");
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("response is not JSON ({e}): {text:?}"));
    // A column selection is rendered by json_build_object, which writes `"key" : value`; the
    // assertions below look for `"key":value`.
    let text = text.replace("\" : ", "\":");
    (status, text, v)
}

/// The rows of a successful answer, failing with the request when it is not one.
#[track_caller]
fn ok_rows(what: &str, res: &(StatusCode, String, Value)) -> Vec<Value> {
    let (status, text, v) = res;
    assert_eq!(status.as_u16(), 200, "{what}: {text}");
    v["data"]["rows"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{what}: no rows in {text}"))
}

/// `expected` and `actual` are the same JSON: objects compare regardless of key order, numbers
/// and strings by their exact text.
#[track_caller]
fn assert_same(what: &str, expected: &str, actual: &Value) {
    let want: Value = serde_json::from_str(expected).expect("expected value is JSON");
    assert_eq!(actual, &want, "{what}: expected {expected}, got {actual}");
    if let (Value::Number(a), Value::Number(w)) = (actual, &want) {
        assert_eq!(a.to_string(), w.to_string(), "{what}: digits differ");
    }
}

/// One value of one column: what is sent (JSON text) and what comes back (JSON text).
struct Sample {
    column: &'static str,
    sent: &'static str,
    returned: &'static str,
}

const fn s(column: &'static str, sent: &'static str, returned: &'static str) -> Sample {
    Sample {
        column,
        sent,
        returned,
    }
}

/// Values every column must carry faithfully. Each column has at least two, so that the update
/// of the first row can move it to the second value.
const SAMPLES: &[Sample] = &[
    s("c_int2", "12345", "12345"),
    s("c_int2", "-32768", "-32768"),
    s("c_int2", "32767", "32767"),
    s("c_int4", "-2147483648", "-2147483648"),
    s("c_int4", "2147483647", "2147483647"),
    s("c_int4", "0", "0"),
    s("c_int8", "9223372036854775807", "9223372036854775807"),
    s("c_int8", "-9223372036854775808", "-9223372036854775808"),
    s(
        "c_numeric",
        "12345678901234567890.12345678901234567890",
        "12345678901234567890.12345678901234567890",
    ),
    s(
        "c_numeric",
        "-98765432109876543210.00000000000000000001",
        "-98765432109876543210.00000000000000000001",
    ),
    s("c_numeric", "1.50", "1.50"),
    s("c_numeric", "\"NaN\"", "\"NaN\""),
    s("c_numeric", "\"Infinity\"", "\"Infinity\""),
    s("c_numeric_10_2", "12345678.9", "12345678.90"),
    s("c_numeric_10_2", "-0.005", "-0.01"),
    s("c_numeric_10_2", "\"3.14159\"", "3.14"),
    s("c_float4", "1.5", "1.5"),
    s("c_float4", "-0.25", "-0.25"),
    s("c_float4", "\"NaN\"", "\"NaN\""),
    s("c_float8", "0.1", "0.1"),
    s("c_float8", "123.456", "123.456"),
    s("c_float8", "-2.5e-300", "-2.5e-300"),
    s("c_float8", "\"NaN\"", "\"NaN\""),
    s("c_float8", "\"Infinity\"", "\"Infinity\""),
    s("c_float8", "\"-Infinity\"", "\"-Infinity\""),
    s("c_bool", "true", "true"),
    s("c_bool", "false", "false"),
    s("c_bool", "\"t\"", "true"),
    s(
        "c_text",
        r#""héllo \"quoted\" 'single' \\ back\nnewline\ttab 🎉 {a,b} NULL""#,
        r#""héllo \"quoted\" 'single' \\ back\nnewline\ttab 🎉 {a,b} NULL""#,
    ),
    s("c_text", "\"\"", "\"\""),
    s("c_text", "\"  padded  \"", "\"  padded  \""),
    s(
        "c_varchar",
        "\"exactly twenty chars\"",
        "\"exactly twenty chars\"",
    ),
    s(
        "c_varchar",
        "\"ünïcödé twenty chars\"",
        "\"ünïcödé twenty chars\"",
    ),
    s("c_char", "\"abc\"", "\"abc\""),
    s("c_char", "\"ab\"", "\"ab \""),
    s(
        "c_uuid",
        "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"",
        "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"",
    ),
    s(
        "c_uuid",
        "\"B1EEBC99-9C0B-4EF8-BB6D-6BB9BD380A22\"",
        "\"b1eebc99-9c0b-4ef8-bb6d-6bb9bd380a22\"",
    ),
    s(
        "c_json",
        r#"{"b": 1, "a": [1, 2.50, {"c": null}], "s": "x\"y"}"#,
        r#"{"b": 1, "a": [1, 2.50, {"c": null}], "s": "x\"y"}"#,
    ),
    s(
        "c_json",
        "[1, \"two\", null, true]",
        "[1, \"two\", null, true]",
    ),
    s("c_json", "\"just a string\"", "\"just a string\""),
    s(
        "c_json",
        "\"{\\\"not\\\": \\\"an object\\\"}\"",
        "\"{\\\"not\\\": \\\"an object\\\"}\"",
    ),
    s("c_json", "12.50", "12.50"),
    s(
        "c_jsonb",
        r#"{"b": 1, "a": {"x": [true, false, null]}, "n": 1.50, "big": 12345678901234567890.12345678901234567890}"#,
        r#"{"a": {"x": [true, false, null]}, "b": 1, "n": 1.50, "big": 12345678901234567890.12345678901234567890}"#,
    ),
    s(
        "c_jsonb",
        "[1, [2, [3, {\"deep\": \"yes\"}]]]",
        "[1, [2, [3, {\"deep\": \"yes\"}]]]",
    ),
    s("c_jsonb", "\"text in jsonb\"", "\"text in jsonb\""),
    s("c_jsonb", "-7", "-7"),
    s("c_jsonb", "false", "false"),
    s("c_jsonb", "{}", "{}"),
    s("c_date", "\"2024-02-29\"", "\"2024-02-29\""),
    s("c_date", "\"1999-12-31\"", "\"1999-12-31\""),
    s("c_time", "\"13:45:30.123456\"", "\"13:45:30.123456\""),
    s("c_time", "\"00:00:00\"", "\"00:00:00\""),
    s(
        "c_timestamp",
        "\"2024-02-29T13:45:30.5\"",
        "\"2024-02-29T13:45:30.5\"",
    ),
    s(
        "c_timestamp",
        "\"2000-01-01 00:00:00\"",
        "\"2000-01-01T00:00:00\"",
    ),
    s(
        "c_timestamptz",
        "\"2024-02-29T13:45:30.123+02:00\"",
        "\"2024-02-29T11:45:30.123+00:00\"",
    ),
    s(
        "c_timestamptz",
        "\"2024-01-01T00:00:00Z\"",
        "\"2024-01-01T00:00:00+00:00\"",
    ),
    s(
        "c_interval",
        "\"1 year 2 mons 3 days 04:05:06.5\"",
        "\"1 year 2 mons 3 days 04:05:06.5\"",
    ),
    s("c_interval", "\"P1DT2H\"", "\"1 day 02:00:00\""),
    s("c_interval", "\"-00:00:01\"", "\"-00:00:01\""),
    s("c_bytea", r#""\\x0102ff""#, r#""\\x0102ff""#),
    s("c_bytea", r#""\\x""#, r#""\\x""#),
    s("c_int4_arr", "[1, 2, 3]", "[1,2,3]"),
    s("c_int4_arr", "[]", "[]"),
    s("c_int4_arr", "[1, null, -3]", "[1,null,-3]"),
    s(
        "c_text_arr",
        r#"["a,b", "quote\"d", "back\\slash", null, "NULL", "", " spaced ", "{braces}", "é🎉"]"#,
        r#"["a,b", "quote\"d", "back\\slash", null, "NULL", "", " spaced ", "{braces}", "é🎉"]"#,
    ),
    s("c_text_arr", "[\"one\"]", "[\"one\"]"),
    s("c_int_2d", "[[1, 2], [3, 4]]", "[[1,2],[3,4]]"),
    s("c_int_2d", "[[5, null, 7]]", "[[5,null,7]]"),
    s(
        "c_jsonb_arr",
        r#"[{"k": 1}, [1, 2], "s", 5, true]"#,
        r#"[{"k": 1}, [1, 2], "s", 5, true]"#,
    ),
    s(
        "c_jsonb_arr",
        r#"[{"a": "x,y"}, null]"#,
        r#"[{"a": "x,y"}, null]"#,
    ),
    s("c_mood", "\"happy\"", "\"happy\""),
    s(
        "c_mood",
        "\"it's \\\"complicated\\\"\"",
        "\"it's \\\"complicated\\\"\"",
    ),
];

/// Columns whose bad values below are bad only for the column's length or precision.
const TYPMOD_ONLY: &[&str] = &["c_varchar", "c_char", "c_numeric_10_2"];

/// Columns PostgreSQL has no `=` operator for: filtering them by equality is the caller's
/// mistake, answered with a 400.
const NO_EQUALITY: &[&str] = &["c_json"];

async fn insert_one(srv: &TestServer, column: &str, sent: &str) -> (i64, Value, String) {
    let body = format!(
        r#"{{"table_name": "typed", "insert_body": {{"{column}": {sent}}}, "columns": ["id", "{column}"]}}"#
    );
    let res = send(srv, Method::PUT, "/gateway/insert", &body).await;
    let rows = ok_rows(&format!("insert {column} = {sent}"), &res);
    assert_eq!(rows.len(), 1, "{}", res.1);
    let id = rows[0]["id"].as_i64().expect("id is an integer");
    (id, rows[0][column].clone(), res.1)
}

async fn fetch_by_id(srv: &TestServer, id: i64) -> Value {
    let body = format!(
        r#"{{"table_name": "typed", "conditions": [{{"eq_column": "id", "eq_value": {id}}}]}}"#
    );
    let res = send(srv, Method::POST, "/gateway/fetch", &body).await;
    let rows = ok_rows(&format!("fetch id {id}"), &res);
    assert_eq!(rows.len(), 1, "{}", res.1);
    rows[0].clone()
}

#[tokio::test]
async fn every_type_round_trips_through_insert_fetch_filter_and_update() {
    let db = typed_db().await;
    let srv = TestServer::start(&db).await;
    let mut first_row: Vec<(&str, i64)> = Vec::new();
    for sample in SAMPLES {
        let what = format!("{} = {}", sample.column, sample.sent);
        // Insert: the returned row carries the value as stored.
        let (id, returned, raw) = insert_one(&srv, sample.column, sample.sent).await;
        assert_same(&format!("insert {what}"), sample.returned, &returned);
        if sample
            .returned
            .starts_with(|c: char| c == '-' || c.is_ascii_digit())
        {
            let needle = format!("\"{}\":{}", sample.column, sample.returned);
            assert!(
                raw.contains(&needle),
                "insert {what}: {needle} not in {raw}"
            );
        }
        // Fetch by id: the same value, and every other column is null.
        let row = fetch_by_id(&srv, id).await;
        assert_same(
            &format!("fetch {what}"),
            sample.returned,
            &row[sample.column],
        );
        for other in COLUMNS.iter().filter(|c| **c != sample.column) {
            assert!(
                row[*other].is_null(),
                "fetch {what}: {other} is {}",
                row[*other]
            );
        }
        // Filter by the value itself, in both condition dialects. A value the column rounded
        // is looked up as stored: the filter parameter has the type without its precision.
        let key = if sample.column == "c_numeric_10_2" {
            sample.returned
        } else {
            sample.sent
        };
        for conditions in [
            format!(
                r#"[{{"eq_column": "{}", "eq_value": {key}}}]"#,
                sample.column
            ),
            format!(
                r#"[{{"operator": "eq", "column": "{}", "value": {key}}}]"#,
                sample.column
            ),
        ] {
            let body =
                format!(r#"{{"table_name": "typed", "conditions": {conditions}, "limit": 1000}}"#);
            let res = send(&srv, Method::POST, "/gateway/fetch", &body).await;
            if NO_EQUALITY.contains(&sample.column) {
                assert_eq!(res.0.as_u16(), 400, "filter {what}: {}", res.1);
                assert_eq!(res.2["code"], "invalid_query", "filter {what}: {}", res.1);
                continue;
            }
            let rows = ok_rows(&format!("filter {what}"), &res);
            assert!(
                rows.iter().any(|r| r["id"] == json!(id)),
                "filter {what} did not find row {id}: {}",
                res.1
            );
            for r in &rows {
                assert_same(
                    &format!("filter {what}"),
                    sample.returned,
                    &r[sample.column],
                );
            }
        }
        if !first_row.iter().any(|(c, _)| *c == sample.column) {
            first_row.push((sample.column, id));
        }
    }
    // Update: the first row of each column takes the column's last sample, found by its id and
    // by its current value.
    for (column, id) in first_row {
        let samples: Vec<&Sample> = SAMPLES.iter().filter(|s| s.column == column).collect();
        let (from, to) = (samples[0], samples[samples.len() - 1]);
        let what = format!("update {column} from {} to {}", from.sent, to.sent);
        let value_condition = if NO_EQUALITY.contains(&column) {
            String::new()
        } else {
            format!(
                r#", {{"eq_column": "{column}", "eq_value": {}}}"#,
                from.sent
            )
        };
        let body = format!(
            r#"{{"table_name": "typed", "update_body": {{"{column}": {}}}, "conditions": [{{"eq_column": "id", "eq_value": {id}}}{value_condition}], "columns": ["id", "{column}"]}}"#,
            to.sent
        );
        let res = send(&srv, Method::POST, "/gateway/update", &body).await;
        let rows = ok_rows(&what, &res);
        assert_eq!(rows.len(), 1, "{what}: {}", res.1);
        assert_same(&what, to.returned, &rows[0][column]);
        assert_same(&what, to.returned, &fetch_by_id(&srv, id).await[column]);
        // And back to NULL.
        let body = format!(
            r#"{{"table_name": "typed", "update_body": {{"{column}": null}}, "conditions": [{{"eq_column": "id", "eq_value": {id}}}]}}"#
        );
        let res = send(&srv, Method::POST, "/gateway/update", &body).await;
        assert!(
            ok_rows(&what, &res)[0][column].is_null(),
            "{what}: {}",
            res.1
        );
    }
}

#[tokio::test]
async fn a_forty_digit_numeric_keeps_every_digit_in_the_raw_response() {
    let db = typed_db().await;
    let srv = TestServer::start(&db).await;
    let digits = "12345678901234567890.12345678901234567890";
    let (id, returned, raw) = insert_one(&srv, "c_numeric", digits).await;
    assert!(raw.contains(&format!("\"c_numeric\":{digits}")), "{raw}");
    assert_eq!(returned.to_string(), digits);
    let res = send(
        &srv,
        Method::POST,
        "/gateway/fetch",
        &format!(r#"{{"table_name": "typed", "columns": ["c_numeric"], "conditions": [{{"eq_column": "c_numeric", "eq_value": {digits}}}]}}"#),
    )
    .await;
    assert!(
        res.1.contains(&format!("\"c_numeric\":{digits}")),
        "{}",
        res.1
    );
    // The digits reached the database intact, not via a float.
    assert_eq!(
        db.scalar(&format!(
            "SELECT c_numeric::text FROM typed WHERE id = {id}"
        ))
        .await
        .as_deref(),
        Some(digits)
    );
    // Sent as a string the value is the same.
    let (_, returned, raw) = insert_one(&srv, "c_numeric", &format!("\"{digits}\"")).await;
    assert_eq!(returned.to_string(), digits);
    assert!(raw.contains(&format!("\"c_numeric\":{digits}")), "{raw}");
}

#[tokio::test]
async fn null_goes_into_and_comes_out_of_every_column() {
    let db = typed_db().await;
    let srv = TestServer::start(&db).await;
    let mut insert = serde_json::Map::new();
    for c in COLUMNS {
        insert.insert(c.to_string(), Value::Null);
    }
    let res = srv
        .call(
            Method::PUT,
            "/gateway/insert",
            Some(json!({"table_name": "typed", "insert_body": insert})),
        )
        .await;
    let row = rows(&res)[0].clone();
    let id = row["id"].clone();
    for c in COLUMNS {
        assert!(row.get(c).is_some_and(Value::is_null), "{c} in {row}");
        // `eq null` is `IS NULL`.
        let res = srv
            .post(
                "/gateway/fetch",
                json!({"table_name": "typed", "conditions": [{"eq_column": c, "eq_value": null}]}),
            )
            .await;
        assert!(
            rows(&res).iter().any(|r| r["id"] == id),
            "{c} IS NULL did not find {id}"
        );
        let res = srv
            .post(
                "/gateway/fetch",
                json!({"table_name": "typed", "conditions": [{"operator": "is", "column": c, "value": null}]}),
            )
            .await;
        assert!(
            rows(&res).iter().any(|r| r["id"] == id),
            "{c} is null did not find {id}"
        );
    }
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM typed WHERE id = {id} AND num_nulls({}) = {}",
            COLUMNS.join(", "),
            COLUMNS.len()
        ))
        .await
        .as_deref(),
        Some("1"),
        "every column is SQL NULL, not JSON null"
    );
    // A JSON null in a json or jsonb column is SQL NULL too, and `X-Strip-Nulls` drops them all.
    let r = srv
        .http
        .post(srv.url("/gateway/fetch"))
        .header("X-Athena-Client", "default")
        .header("X-Strip-Nulls", "true")
        .json(&json!({"table_name": "typed", "conditions": [{"eq_column": "id", "eq_value": id}]}))
        .send()
        .await
        .unwrap();
    let res = read(r).await;
    assert_eq!(rows(&res)[0], json!({"id": id}));
}

#[tokio::test]
async fn a_number_as_a_string_binds_to_an_integer_column() {
    let db = typed_db().await;
    let srv = TestServer::start(&db).await;
    let (id, _, _) = insert_one(&srv, "c_int4", "\"42\"").await;
    for value in [json!("42"), json!(42), json!(" 42 ")] {
        let res = srv
            .post(
                "/gateway/fetch",
                json!({"table_name": "typed", "conditions": [{"eq_column": "c_int4", "eq_value": value}]}),
            )
            .await;
        let found = rows(&res);
        assert_eq!(found.len(), 1, "{value}: {}", res.1);
        assert_eq!(found[0]["id"], id);
        assert_eq!(found[0]["c_int4"], 42);
    }
    let res = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "typed", "conditions": [{"operator": "in", "column": "c_int4", "value": ["41", 42]}]}),
        )
        .await;
    assert_eq!(rows(&res).len(), 1);
    let res = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "typed", "conditions": [{"operator": "or", "value": "c_int4.eq.42,c_int4.gt.100"}]}),
        )
        .await;
    assert_eq!(rows(&res).len(), 1);
}

#[tokio::test]
async fn values_that_are_not_of_the_column_type_are_invalid_value() {
    let db = typed_db().await;
    let srv = TestServer::start(&db).await;
    let (id, _, _) = insert_one(&srv, "c_int4", "7").await;
    let bad: Vec<(&str, Value)> = vec![
        ("c_int4", json!("abc")),
        ("c_int4", json!({"a": 1})),
        ("c_int4", json!([1])),
        ("c_int4", json!(1.5)),
        ("c_int4", json!(true)),
        ("c_int4", json!("")),
        ("c_int4", json!(2_147_483_648u64)),
        ("c_int2", json!(70000)),
        ("c_int2", json!("-32769")),
        ("c_int8", json!(9_223_372_036_854_775_808u64)),
        ("c_numeric", json!("12,5")),
        ("c_numeric", json!({"n": 1})),
        ("c_numeric_10_2", json!(123_456_789.5)),
        ("c_float8", json!("fast")),
        ("c_float8", json!("1e400")),
        ("c_float4", json!("1e40")),
        ("c_bool", json!("maybe")),
        ("c_bool", json!(2)),
        ("c_varchar", json!("twenty-one characters")),
        ("c_varchar", json!("x".repeat(1000))),
        ("c_char", json!("abcd")),
        ("c_text", json!({"not": "text"})),
        ("c_text", json!(["not", "text"])),
        ("c_text", json!("nul \u{0} byte")),
        ("c_uuid", json!("not-a-uuid")),
        ("c_uuid", json!(12345)),
        ("c_jsonb", json!("nul \u{0} escape")),
        ("c_date", json!("2024-02-30")),
        ("c_date", json!("yesterday-ish")),
        ("c_time", json!("25:00:00")),
        ("c_timestamp", json!("2024-13-01T00:00:00")),
        ("c_timestamptz", json!("not a time")),
        ("c_interval", json!("forever")),
        ("c_bytea", json!("\\xZZ")),
        ("c_bytea", json!("\\x123")),
        ("c_int4_arr", json!(["a"])),
        ("c_int4_arr", json!([[1, 2], [3]])),
        ("c_int4_arr", json!([{"a": 1}])),
        ("c_int4_arr", json!(5)),
        ("c_int4_arr", json!({"a": 1})),
        ("c_int4_arr", json!("{1,2")),
        ("c_int_2d", json!([[1, 2], [3]])),
        ("c_text_arr", json!([["a"], "b"])),
        ("c_mood", json!("angry")),
        ("c_mood", json!("HAPPY")),
        ("c_mood", json!(1)),
    ];
    let mut failures = Vec::new();
    for (column, value) in bad {
        let attempts = [
            (
                "insert",
                Method::PUT,
                "/gateway/insert",
                json!({"table_name": "typed", "insert_body": {column: value}}),
            ),
            (
                "update",
                Method::POST,
                "/gateway/update",
                json!({"table_name": "typed", "update_body": {column: value}, "conditions": [{"eq_column": "id", "eq_value": id}]}),
            ),
            (
                "filter",
                Method::POST,
                "/gateway/fetch",
                json!({"table_name": "typed", "conditions": [{"eq_column": column, "eq_value": value}]}),
            ),
        ];
        for (kind, method, path, body) in attempts {
            // A filter parameter takes the column's type without its length or precision
            // (`varchar`, not `varchar(20)`): a too-long value is valid there and matches nothing.
            if kind == "filter" && TYPMOD_ONLY.contains(&column) {
                let res = srv.call(method, path, Some(body)).await;
                if !rows(&res).is_empty() {
                    failures.push(format!("filter {column} = {value} matched: {}", res.1));
                }
                continue;
            }
            let res = srv.call(method, path, Some(body)).await;
            let ok = res.0.as_u16() == 400
                && res.1["status"] == "error"
                && res.1["code"] == "invalid_value";
            if !ok {
                failures.push(format!("{kind} {column} = {value}: {} {}", res.0, res.1));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Nothing was written by any of them.
    assert_eq!(
        db.scalar("SELECT count(*) FROM typed").await.as_deref(),
        Some("1")
    );
    let row = fetch_by_id(&srv, id).await;
    assert_eq!(row["c_int4"], 7);
    for c in COLUMNS.iter().filter(|c| **c != "c_int4") {
        assert!(row[*c].is_null(), "{c} is {}", row[*c]);
    }
}

#[tokio::test]
async fn scalars_of_other_json_types_bind_by_their_text() {
    let db = typed_db().await;
    let srv = TestServer::start(&db).await;
    let cases: [(&str, &str, &str); 8] = [
        ("c_text", "42", "\"42\""),
        ("c_text", "true", "\"true\""),
        ("c_text", "1.50", "\"1.50\""),
        ("c_varchar", "-7", "\"-7\""),
        ("c_bool", "\"yes\"", "true"),
        ("c_bool", "\"off\"", "false"),
        ("c_float8", "\"1.25\"", "1.25"),
        ("c_int8", "\"-9223372036854775808\"", "-9223372036854775808"),
    ];
    for (column, sent, returned) in cases {
        let (_, got, _) = insert_one(&srv, column, sent).await;
        assert_same(&format!("{column} = {sent}"), returned, &got);
    }
    // Arrays may also be sent as PostgreSQL array literals.
    let (_, got, _) = insert_one(&srv, "c_int4_arr", "\"{4,5,6}\"").await;
    assert_same("c_int4_arr literal", "[4,5,6]", &got);
    let (_, got, _) = insert_one(&srv, "c_text_arr", r#""{\"a b\",NULL,c}""#).await;
    assert_same("c_text_arr literal", r#"["a b", null, "c"]"#, &got);
}

#[tokio::test]
async fn array_and_jsonb_containment_filters_use_the_column_type() {
    let db = typed_db().await;
    let srv = TestServer::start(&db).await;
    let (a, _, _) = insert_one(&srv, "c_text_arr", r#"["x,y", "quote\"d", "plain"]"#).await;
    let (b, _, _) = insert_one(&srv, "c_jsonb", r#"{"tags": ["red", "blue"], "n": 1.50}"#).await;
    let (c, _, _) = insert_one(&srv, "c_int4_arr", "[1, 2, 3]").await;
    let find = |conditions: Value| {
        let srv = &srv;
        async move {
            let res = srv
                .post(
                    "/gateway/fetch",
                    json!({"table_name": "typed", "conditions": conditions, "order_by": "id"}),
                )
                .await;
            rows(&res)
                .iter()
                .map(|r| r["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        find(
            json!([{"operator": "contains", "column": "c_text_arr", "value": ["quote\"d", "x,y"]}])
        )
        .await,
        [a]
    );
    assert_eq!(
        find(json!([{"operator": "contains", "column": "c_jsonb", "value": {"tags": ["blue"]}}]))
            .await,
        [b]
    );
    assert_eq!(
        find(json!([{"operator": "contains", "column": "c_jsonb", "value": {"n": 1.5}}])).await,
        [b],
        "jsonb compares numbers by value"
    );
    assert_eq!(
        find(
            json!([{"operator": "containedBy", "column": "c_int4_arr", "value": [0, 1, 2, 3, 4]}])
        )
        .await,
        [c]
    );
    assert_eq!(
        find(json!([{"operator": "or", "value": "c_int4_arr.cs.{2},c_text_arr.cs.{plain}"}])).await,
        [a, c]
    );
}
