//! The WebSocket gateway with a real WebSocket client: the connect acknowledgement, every action
//! answering like its HTTP route, 100 requests multiplexed on one socket, the cache shared with
//! HTTP, and authentication by header, by `auth` message and per request, with every refusal.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::ws::{assert_frame_error, Ws};
use common::*;
use serde_json::{json, Value};

/// The gateway seed plus `items`: 100 rows, `note` null on odd ids.
const ITEMS: &str = "CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL, note text);
INSERT INTO items SELECT g, 'item-' || g, CASE WHEN g % 2 = 0 THEN 'even' END
FROM generate_series(1, 100) g;";

async fn seeded() -> TestDb {
    TestDb::create(&format!("{SEED}{ITEMS}")).await
}

fn by_id(id: i64) -> Value {
    json!({"table_name": "items", "conditions": [{"eq_column": "id", "eq_value": id}]})
}

/// A frame without what only the socket adds, to compare with the HTTP body.
fn as_http(mut v: Value) -> Value {
    let m = v.as_object_mut().unwrap();
    m.remove("request_id");
    m.remove("cache");
    m.remove("trace_id");
    v
}

fn without_trace(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("trace_id");
    v
}

#[actix_rt::test]
async fn the_connect_ack_names_the_protocol_the_api_base_and_the_limits() {
    let db = seeded().await;
    let srv = TestServer::start(&db).await;
    let (ws, ack) = Ws::connect(&srv, &[]).await;
    assert_eq!(ack["status"], "success", "{ack}");
    assert_eq!(ack["message"], "connected", "{ack}");
    let data = &ack["data"];
    assert_eq!(data["protocol"], "athena-gateway/1", "{ack}");
    assert_eq!(data["api_base"], srv.base.as_str(), "{ack}");
    let started = data["started_at"].as_str().unwrap();
    // 2026-01-02T03:04:05.678Z
    assert_eq!(started.len(), 24, "{started}");
    assert!(
        started.ends_with('Z') && &started[10..11] == "T",
        "{started}"
    );
    assert_eq!(
        data["limits"],
        json!({"max_in_flight": 128, "max_frame_bytes": 2097152,
               "ping_interval_ms": 15000, "idle_timeout_ms": 60000, "max_subscriptions": 16})
    );
    ws.close().await;
}

#[actix_rt::test]
async fn a_hundred_requests_multiplexed_on_one_socket_are_each_answered_by_request_id() {
    let db = seeded().await;
    let srv = TestServer::start(&db).await;
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    // All are sent before any answer is read.
    for i in 1..=100 {
        ws.request(&format!("r{i}"), "gateway.fetch", by_id(i))
            .await;
    }
    let mut answers = BTreeMap::new();
    for _ in 0..100 {
        let v = ws.next_text().await;
        let id = v["request_id"]
            .as_str()
            .expect("every answer names its request")
            .to_string();
        assert!(
            answers.insert(id.clone(), v).is_none(),
            "{id} answered twice"
        );
    }
    for i in 1..=100 {
        let v = &answers[&format!("r{i}")];
        assert_eq!(v["status"], "success", "{v}");
        assert_eq!(v["message"], "Fetched 1 row", "{v}");
        let rows = v["data"]["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{v}");
        assert_eq!(rows[0]["id"], i, "{v}");
        assert_eq!(rows[0]["label"], format!("item-{i}"), "{v}");
    }
    ws.close().await;
}

#[actix_rt::test]
async fn a_slow_request_does_not_hold_up_the_requests_behind_it() {
    let db = seeded().await;
    let srv = TestServer::start(&db).await;
    let bearer = format!("Bearer {ADMIN_KEY}");
    let (mut ws, _) = Ws::connect(&srv, &[("Authorization", &bearer)]).await;
    let started = Instant::now();
    ws.request(
        "slow",
        "gateway.query",
        json!({"query": "SELECT pg_sleep(1.5) IS NULL AS slept"}),
    )
    .await;
    for i in 1..=5 {
        ws.request(&format!("fast{i}"), "gateway.fetch", by_id(i))
            .await;
    }
    let mut order = Vec::new();
    for _ in 0..6 {
        let v = ws.next_text().await;
        assert_eq!(v["status"], "success", "{v}");
        order.push(v["request_id"].as_str().unwrap().to_string());
    }
    assert_eq!(order.last().map(String::as_str), Some("slow"), "{order:?}");
    assert!(started.elapsed() >= Duration::from_millis(1400));
}

#[actix_rt::test]
async fn every_action_answers_as_its_http_route_does() {
    let db = seeded().await;
    let srv = TestServer::start(&db).await;
    let bearer = format!("Bearer {ADMIN_KEY}");
    let (mut ws, _) = Ws::connect(&srv, &[("Authorization", &bearer)]).await;

    // Fetch: the same envelope as POST /gateway/fetch, plus the request id and the cache outcome.
    let fetch = json!({"table_name": "items", "columns": ["id", "label"],
                       "conditions": [{"operator": "lte", "column": "id", "value": 3}],
                       "sort_by": {"field": "id", "direction": "desc"}, "count": "exact"});
    let v = ws.call("f", "gateway.fetch", fetch.clone()).await;
    assert_eq!(v["cache"], "bypass", "caching is off in this server: {v}");
    let (status, http) = srv.post("/gateway/fetch", fetch).await;
    assert_eq!(status, 200);
    assert_eq!(as_http(v), http);

    // Raw SQL: the same as POST /gateway/query.
    let sql =
        json!({"query": "SELECT count(*)::int AS n FROM items WHERE id > $1", "params": [90]});
    let v = ws.call("q", "gateway.query", sql.clone()).await;
    assert_eq!(v["data"]["rows"], json!([{"n": 10}]), "{v}");
    assert!(v.get("cache").is_none(), "{v}");
    let (_, http) = srv.sql(sql["query"].as_str().unwrap(), json!([90])).await;
    assert_eq!(as_http(v), http);

    // Writes: insert, update, delete, each seen by HTTP afterwards.
    let v = ws
        .call(
            "i",
            "gateway.insert",
            json!({"table_name": "items", "insert_body": {"id": 1000, "label": "ws"}}),
        )
        .await;
    assert_eq!(v["message"], "Inserted 1 row", "{v}");
    assert_eq!(v["data"]["rows"][0]["label"], "ws", "{v}");
    let v = ws
        .call(
            "u",
            "gateway.update",
            json!({"table_name": "items", "set": {"note": "changed"},
                   "conditions": [{"eq_column": "id", "eq_value": 1000}]}),
        )
        .await;
    assert_eq!(v["message"], "Updated 1 row", "{v}");
    assert_eq!(
        rows(&srv.post("/gateway/fetch", by_id(1000)).await)[0]["note"],
        "changed"
    );
    let v = ws
        .call(
            "d",
            "gateway.delete",
            json!({"table_name": "items", "resource_id": 1000}),
        )
        .await;
    assert_eq!(v["message"], "Deleted 1 row", "{v}");
    assert!(rows(&srv.post("/gateway/fetch", by_id(1000)).await).is_empty());

    // Errors: the same code, message, detail and hint as HTTP.
    for (action, path, body) in [
        (
            "gateway.fetch",
            "/gateway/fetch",
            json!({"table_name": "nope"}),
        ),
        (
            "gateway.fetch",
            "/gateway/fetch",
            json!({"table_name": "items", "limit": 100000}),
        ),
        (
            "gateway.delete",
            "/gateway/delete",
            json!({"table_name": "items"}),
        ),
        (
            "gateway.insert",
            "/gateway/insert",
            json!({"table_name": "items", "insert_body": {"id": 1, "label": "dup"}}),
        ),
        (
            "gateway.query",
            "/gateway/query",
            json!({"query": "SELEC 1"}),
        ),
    ] {
        let v = ws.call("e", action, body.clone()).await;
        let method = match action {
            "gateway.insert" => reqwest::Method::PUT,
            "gateway.delete" => reqwest::Method::DELETE,
            _ => reqwest::Method::POST,
        };
        let r = srv
            .http
            .request(method, srv.url(path))
            .header("X-Athena-Client", "default")
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, http) = read(r).await;
        assert!(status.as_u16() >= 400, "{http}");
        assert_frame_error(&v, Some("e"), http["code"].as_str().unwrap());
        assert_eq!(without_trace(as_http(v)), without_trace(http));
    }
    ws.close().await;
}

#[actix_rt::test]
async fn message_headers_strip_nulls_and_name_the_audit_ids_but_never_a_connection_target() {
    let db = seeded().await;
    let srv = TestServer::start(&db).await;
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    let plain = ws.call("1", "gateway.fetch", by_id(1)).await;
    assert!(plain["data"]["rows"][0]["note"].is_null());
    assert!(plain["data"]["rows"][0]
        .as_object()
        .unwrap()
        .contains_key("note"));
    let stripped = ws
        .roundtrip(json!({"request_id": "2", "action": "gateway.fetch", "client_name": "default",
                          "body": by_id(1), "headers": {"X-Strip-Nulls": "true", "x-user-id": "u1"}}))
        .await;
    assert_eq!(
        stripped["data"]["rows"],
        json!([{"id": 1, "label": "item-1"}]),
        "{stripped}"
    );
    let refused = ws
        .roundtrip(json!({"request_id": "3", "action": "gateway.query", "client_name": "default",
                          "body": {"query": "SELECT 1"}, "headers": {"x-jdbc-url": "jdbc:postgresql://elsewhere/db"}}))
        .await;
    assert_frame_error(&refused, Some("3"), "connection_target_not_allowed");
    ws.close().await;
}

#[actix_rt::test]
async fn with_audit_headers_required_a_socket_write_takes_them_from_the_message_or_the_upgrade() {
    let db = seeded().await;
    let yaml = config_yaml(&db.uri, "", "gateway:\n  require_audit_headers: true\n");
    let srv = TestServer::start_yaml(&yaml).await;
    let insert = |id: i64| json!({"table_name": "items", "insert_body": {"id": id, "label": "x"}});
    // The upgrade named only the user; the message must name the rest.
    let (mut ws, _) = Ws::connect(&srv, &[("x-user-id", "u1")]).await;
    let refused = ws.call("1", "gateway.insert", insert(101)).await;
    assert_frame_error(&refused, Some("1"), "missing_audit_header");
    assert!(
        refused["error"].as_str().unwrap().contains("X-Company-Id"),
        "{refused}"
    );
    // A blank header is no header.
    let blank = ws
        .roundtrip(json!({"request_id": "2", "action": "gateway.insert", "client_name": "default",
                          "body": insert(101), "headers": {"x-company-id": " ", "x-organization-id": "o"}}))
        .await;
    assert_frame_error(&blank, Some("2"), "missing_audit_header");
    assert!(
        blank["error"].as_str().unwrap().contains("X-Company-Id"),
        "{blank}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM items").await.as_deref(),
        Some("100")
    );
    let done = ws
        .roundtrip(json!({"request_id": "3", "action": "gateway.insert", "client_name": "default",
                          "body": insert(101), "headers": {"x-company-id": "c", "x-organization-id": "o"}}))
        .await;
    assert_eq!(done["status"], "success", "{done}");
    // Fetches never need them.
    let fetched = ws.call("4", "gateway.fetch", by_id(101)).await;
    assert_eq!(fetched["data"]["rows"][0]["label"], "x", "{fetched}");
    ws.close().await;
}

#[actix_rt::test]
async fn fetches_over_the_socket_share_the_http_cache_and_writes_invalidate_it() {
    let db = seeded().await;
    let srv = TestServer::start_yaml(&config_yaml(
        &db.uri,
        "",
        "cache:\n  enabled: true\n  ttl_secs: 60\n",
    ))
    .await;
    let r = srv.post_response("/gateway/fetch", by_id(7)).await;
    assert_eq!(r.headers()["x-athena-cache"], "miss");
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    let v = ws.call("1", "gateway.fetch", by_id(7)).await;
    assert_eq!(v["cache"], "hit", "{v}");
    assert_eq!(v["data"]["rows"][0]["label"], "item-7");
    let v = ws
        .roundtrip(
            json!({"request_id": "2", "action": "gateway.fetch", "client_name": "default",
                          "body": by_id(7), "headers": {"Cache-Control": "no-cache"}}),
        )
        .await;
    assert_eq!(v["cache"], "bypass", "{v}");
    let v = ws
        .call(
            "3",
            "gateway.update",
            json!({"table_name": "items", "set": {"label": "seven"},
                   "conditions": [{"eq_column": "id", "eq_value": 7}]}),
        )
        .await;
    assert_eq!(v["status"], "success", "{v}");
    let v = ws.call("4", "gateway.fetch", by_id(7)).await;
    assert_eq!(v["cache"], "miss", "{v}");
    assert_eq!(v["data"]["rows"][0]["label"], "seven", "{v}");
    ws.close().await;
}

/// A server enforcing keys, with clients `default` and `second`, `logging` migrated at start.
fn enforced(db: &TestDb, logging: &TestDb) -> String {
    config_yaml(
        &db.uri,
        "",
        &format!(
            "logging:\n  uri: {}\napi_keys:\n  enforce: true\n",
            logging.uri
        ),
    ) + &format!("  second:\n    uri: {}\n", db.uri)
}

#[actix_rt::test]
async fn a_key_in_any_upgrade_header_authenticates_the_sockets_requests_with_its_rights() {
    let db = seeded().await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&enforced(&db, &logging)).await;
    let (key, _) = create_key(&srv, json!({"name": "reader", "rights": ["items.read"]})).await;
    let bearer = format!("Bearer {key}");
    for header in [
        ("Authorization", bearer.as_str()),
        ("apikey", key.as_str()),
        ("x-api-key", key.as_str()),
        ("x-athena-key", key.as_str()),
    ] {
        let (mut ws, _) = Ws::connect(&srv, &[header]).await;
        let v = ws.call("ok", "gateway.fetch", by_id(1)).await;
        assert_eq!(v["status"], "success", "{header:?}: {v}");
        let v = ws
            .call("users", "gateway.fetch", json!({"table_name": "users"}))
            .await;
        assert_frame_error(&v, Some("users"), "forbidden");
        assert!(v["error"].as_str().unwrap().contains("users.read"), "{v}");
        let v = ws
            .call("sql", "gateway.query", json!({"query": "SELECT 1"}))
            .await;
        assert_frame_error(&v, Some("sql"), "forbidden");
        assert!(
            v["error"].as_str().unwrap().contains("gateway.query"),
            "{v}"
        );
        let v = ws
            .call(
                "ins",
                "gateway.insert",
                json!({"table_name": "items", "insert_body": {"id": 500, "label": "x"}}),
            )
            .await;
        assert_frame_error(&v, Some("ins"), "forbidden");
        assert!(v["error"].as_str().unwrap().contains("items.write"), "{v}");
        ws.close().await;
    }
    // No key at all: refused like HTTP, the socket stays open.
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    let v = ws.call("none", "gateway.fetch", by_id(1)).await;
    assert_frame_error(&v, Some("none"), "missing_api_key");
    let (_, http) = srv.post("/gateway/fetch", by_id(1)).await;
    assert_eq!(without_trace(as_http(v)), without_trace(http));
    let v = ws.call("again", "gateway.fetch", by_id(1)).await;
    assert_frame_error(&v, Some("again"), "missing_api_key");
}

#[actix_rt::test]
async fn an_auth_message_authenticates_a_socket_opened_without_headers() {
    let db = seeded().await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&enforced(&db, &logging)).await;
    let (key, record) = create_key(&srv, json!({"name": "reader", "rights": ["items.read"]})).await;
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    let v = ws.call("before", "gateway.fetch", by_id(1)).await;
    assert_frame_error(&v, Some("before"), "missing_api_key");

    let ack = ws
        .roundtrip(json!({"action": "auth", "key": key, "request_id": "a1"}))
        .await;
    assert_eq!(
        ack,
        json!({"request_id": "a1", "status": "success", "message": "authenticated",
               "data": {"admin": false, "public_id": record["public_id"]}})
    );
    let v = ws.call("after", "gateway.fetch", by_id(1)).await;
    assert_eq!(v["status"], "success", "{v}");

    // A key that cannot be valid is refused; the socket keeps the key it had.
    let public_id = record["public_id"].as_str().unwrap();
    for bad in [
        format!("ath_{public_id}.wrong"),
        "ath_unknown.secret".into(),
        "garbage".into(),
    ] {
        let v = ws.roundtrip(json!({"action": "auth", "key": bad})).await;
        assert_frame_error(&v, None, "invalid_api_key");
    }
    let v = ws.call("still", "gateway.fetch", by_id(1)).await;
    assert_eq!(v["status"], "success", "{v}");

    // The admin key holds every right, raw SQL included.
    let ack = ws
        .roundtrip(json!({"action": "auth", "key": ADMIN_KEY}))
        .await;
    assert_eq!(
        ack["data"],
        json!({"admin": true, "public_id": null}),
        "{ack}"
    );
    let v = ws
        .call("users", "gateway.fetch", json!({"table_name": "users"}))
        .await;
    assert_eq!(v["status"], "success", "{v}");
    let v = ws
        .call("sql", "gateway.query", json!({"query": "SELECT 1 AS one"}))
        .await;
    assert_eq!(v["data"]["rows"], json!([{"one": 1}]), "{v}");
}

#[actix_rt::test]
async fn keys_are_refused_as_over_http_bad_bound_or_over_their_rate() {
    let db = seeded().await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&enforced(&db, &logging)).await;
    let (key, record) = create_key(&srv, json!({"name": "r", "rights": ["items.read"]})).await;
    let public_id = record["public_id"].as_str().unwrap();

    // At the upgrade, a key that cannot be valid gets no socket.
    let wrong = format!("ath_{public_id}.wrong");
    for bad in [wrong.as_str(), "garbage"] {
        let status = Ws::try_connect(&srv, &[("apikey", bad)]).await.err();
        assert_eq!(status, Some(401), "{bad}");
    }
    // A message's own key wins for that request, and is checked like HTTP's.
    let (mut ws, _) = Ws::connect(&srv, &[("apikey", &key)]).await;
    let v = ws
        .roundtrip(
            json!({"request_id": "w", "action": "gateway.fetch", "client_name": "default",
                          "body": by_id(1), "headers": {"x-api-key": wrong}}),
        )
        .await;
    assert_frame_error(&v, Some("w"), "invalid_api_key");
    let v = ws
        .roundtrip(json!({"request_id": "adm", "action": "gateway.query", "client_name": "default",
                          "body": {"query": "SELECT 2 AS two"}, "headers": {"Authorization": format!("Bearer {ADMIN_KEY}")}}))
        .await;
    assert_eq!(v["data"]["rows"], json!([{"two": 2}]), "{v}");
    // The socket's key is unchanged by it.
    let v = ws
        .call("sql", "gateway.query", json!({"query": "SELECT 1"}))
        .await;
    assert_frame_error(&v, Some("sql"), "forbidden");

    // A key bound to another client.
    let (bound, _) = create_key(
        &srv,
        json!({"name": "b", "rights": ["*"], "client_name": "second"}),
    )
    .await;
    let (mut ws, _) = Ws::connect(&srv, &[("x-athena-key", &bound)]).await;
    let v = ws
        .roundtrip(json!({"request_id": "2", "action": "gateway.fetch", "client_name": "second", "body": by_id(1)}))
        .await;
    assert_eq!(v["status"], "success", "{v}");
    let v = ws.call("1", "gateway.fetch", by_id(1)).await;
    assert_frame_error(&v, Some("1"), "forbidden");
    assert!(v["error"].as_str().unwrap().contains("second"), "{v}");
    // An unknown client.
    let v = ws
        .roundtrip(json!({"request_id": "g", "action": "gateway.fetch", "client_name": "ghost", "body": by_id(1)}))
        .await;
    assert_frame_error(&v, Some("g"), "unknown_client");

    // The key's rate limit counts socket requests like HTTP ones.
    let (limited, _) = create_key(
        &srv,
        json!({"name": "slow", "rights": ["*"], "rate_limit_per_minute": 3}),
    )
    .await;
    let (mut ws, _) = Ws::connect(&srv, &[("apikey", &limited)]).await;
    for i in 0..3 {
        let v = ws.call(&format!("{i}"), "gateway.fetch", by_id(1)).await;
        assert_eq!(v["status"], "success", "{v}");
    }
    let v = ws.call("over", "gateway.fetch", by_id(1)).await;
    assert_frame_error(&v, Some("over"), "rate_limited");
    let retry = v["retry_after"].as_u64().unwrap_or(0);
    assert!((1..=20).contains(&retry), "{v}");
}

#[actix_rt::test]
async fn raw_sql_over_the_socket_needs_a_key_even_where_keys_are_not_enforced() {
    let db = seeded().await;
    let srv = TestServer::start(&db).await;
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    // Structured requests run anonymously here, as over HTTP.
    let v = ws.call("f", "gateway.fetch", by_id(1)).await;
    assert_eq!(v["status"], "success", "{v}");
    let v = ws
        .call("q", "gateway.query", json!({"query": "SELECT 1"}))
        .await;
    assert_frame_error(&v, Some("q"), "missing_api_key");
    let ack = ws
        .roundtrip(json!({"action": "auth", "key": ADMIN_KEY}))
        .await;
    assert_eq!(ack["status"], "success", "{ack}");
    let v = ws
        .call("q2", "gateway.query", json!({"query": "SELECT 1 AS one"}))
        .await;
    assert_eq!(v["data"]["rows"], json!([{"one": 1}]), "{v}");
}

#[actix_rt::test]
async fn a_nul_character_anywhere_in_a_message_is_refused_naming_where_and_writes_nothing() {
    let db = seeded().await;
    let srv = TestServer::start(&db).await;
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    let cases = [
        (
            json!({"request_id": "1", "action": "gateway.insert", "client_name": "default",
                   "body": {"table_name": "items", "insert_body": {"id": 500, "label": "a\u{0}b"}}}),
            "body.insert_body.label",
        ),
        (
            json!({"request_id": "2", "action": "gateway.insert", "client_name": "default",
                   "body": {"table_name": "items", "insert_body": [{"id": 501, "label": "ok"},
                                                                   {"id": 502, "label": "\u{0}"}]}}),
            "body.insert_body[1].label",
        ),
        (
            json!({"request_id": "3", "action": "gateway.fetch", "client_name": "default",
                   "body": by_id(1), "headers": {"x-user-id": "u\u{0}1"}}),
            "headers.x-user-id",
        ),
    ];
    for (message, field) in cases {
        let id = message["request_id"].as_str().unwrap().to_string();
        let refused = ws.roundtrip(message).await;
        assert_frame_error(&refused, Some(&id), "invalid_value");
        assert!(
            refused["error"].as_str().unwrap().contains(field),
            "{field}: {refused}"
        );
    }
    let count = db
        .scalar("SELECT count(*) FROM items WHERE id >= 500")
        .await;
    assert_eq!(count.as_deref(), Some("0"), "nothing was written");
    ws.close().await;
}
