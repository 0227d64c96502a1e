//! The WebSocket gateway's edges: malformed and binary messages (the socket stays open),
//! fragmented messages, the frame size limit (close 1009), the in-flight limit, the idle timeout,
//! a plain GET, `/wss/info`, and statistics and metrics of socket requests.

use crate::common;

use std::time::{Duration, Instant};

use awc::ws::{CloseCode, Message};
use bytes::Bytes;
use common::ws::{assert_frame_error, Event, Ws};
use common::*;
use serde_json::{json, Value};

fn fetch_one() -> Value {
    json!({"table_name": "users", "conditions": [{"eq_column": "id", "eq_value": 1}]})
}

/// A server with `websocket` settings `ws` (YAML lines, indented by two).
async fn server(db: &TestDb, ws: &str) -> TestServer {
    TestServer::start_yaml(&config_yaml(&db.uri, "", &format!("websocket:\n{ws}"))).await
}

#[actix_rt::test]
async fn malformed_and_binary_messages_get_error_frames_and_the_socket_stays_open() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    let cases: [(&str, Option<&str>, &str); 12] = [
        ("{not json", None, "invalid_json"),
        ("", None, "invalid_json"),
        ("[1, 2]", None, "invalid_body"),
        ("42", None, "invalid_body"),
        (r#"{"request_id": "a"}"#, Some("a"), "missing_field"),
        (
            r#"{"request_id": "b", "action": "gateway.drop"}"#,
            Some("b"),
            "unknown_action",
        ),
        (
            r#"{"request_id": "c", "action": ["gateway.fetch"]}"#,
            Some("c"),
            "invalid_field",
        ),
        (
            r#"{"request_id": 7, "action": "gateway.fetch"}"#,
            None,
            "invalid_field",
        ),
        (
            r#"{"action": "gateway.fetch", "client_name": "default", "body": {}}"#,
            None,
            "missing_field",
        ),
        (
            r#"{"request_id": "d", "action": "gateway.fetch", "body": {"table_name": "users"}}"#,
            Some("d"),
            "missing_field",
        ),
        (
            r#"{"request_id": "e", "action": "gateway.fetch", "client_name": "default", "body": "users"}"#,
            Some("e"),
            "invalid_field",
        ),
        (
            r#"{"request_id": "f", "action": "gateway.fetch", "client_name": "default", "body": {}, "headers": {"x-strip-nulls": true}}"#,
            Some("f"),
            "invalid_field",
        ),
    ];
    for (text, id, code) in cases {
        ws.send_text(text).await;
        let v = ws.next_text().await;
        assert_frame_error(&v, id, code);
    }
    // A well-formed request whose body the gateway refuses: the HTTP route's error.
    let v = ws.call("g", "gateway.fetch", json!({})).await;
    assert_frame_error(&v, Some("g"), "missing_field");
    // Binary frames are not read.
    ws.send_raw(Message::Binary(Bytes::from_static(b"{\"x\":1}")))
        .await;
    assert_frame_error(&ws.next_text().await, None, "unsupported_frame");
    // The socket still serves.
    let v = ws.call("ok", "gateway.fetch", fetch_one()).await;
    assert_eq!(v["data"]["rows"][0]["email"], "ada@example.com", "{v}");
    ws.close().await;
}

#[actix_rt::test]
async fn a_fragmented_message_is_put_together_and_answered() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    let msg = json!({"request_id": "frag", "action": "gateway.fetch", "client_name": "default", "body": fetch_one()});
    ws.send_fragmented(&msg.to_string()).await;
    let v = ws.next_text().await;
    assert_eq!(v["request_id"], "frag", "{v}");
    assert_eq!(v["data"]["rows"][0]["id"], 1, "{v}");
    ws.close().await;
}

async fn expect_close(ws: &mut Ws, code: CloseCode) {
    loop {
        match ws.next_event(Duration::from_secs(10)).await {
            Event::Close(reason) => {
                let reason = reason.expect("the close names its reason");
                assert_eq!(reason.code, code, "{reason:?}");
                return;
            }
            Event::Text(v) => {
                assert_frame_error(&v, None, "payload_too_large");
            }
            Event::End => panic!("the connection ended without a close frame"),
        }
    }
}

#[actix_rt::test]
async fn a_message_over_the_frame_limit_closes_the_socket_with_1009() {
    let db = TestDb::create(SEED).await;
    let srv = server(&db, "  max_frame_bytes: 4096\n").await;
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    // Just under the limit is served.
    let pad = "x".repeat(3000);
    let v = ws
        .roundtrip(
            json!({"request_id": "small", "action": "gateway.fetch", "client_name": "default",
                          "body": fetch_one(), "padding": pad}),
        )
        .await;
    assert_eq!(v["status"], "success", "{v}");
    let big = json!({"request_id": "big", "action": "gateway.fetch", "client_name": "default",
                     "body": fetch_one(), "padding": "x".repeat(10_000)});
    ws.send_text(&big.to_string()).await;
    expect_close(&mut ws, CloseCode::Size).await;

    // The same bound holds for a message sent in fragments, each under it.
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    ws.send_fragmented(&big.to_string()).await;
    expect_close(&mut ws, CloseCode::Size).await;
}

#[actix_rt::test]
async fn requests_over_the_in_flight_limit_are_refused_and_the_socket_stays_open() {
    let db = TestDb::create(SEED).await;
    let srv = server(&db, "  max_in_flight: 2\n").await;
    let bearer = format!("Bearer {ADMIN_KEY}");
    let (mut ws, _) = Ws::connect(&srv, &[("Authorization", &bearer)]).await;
    let slow = json!({"query": "SELECT pg_sleep(1) IS NULL AS slept"});
    ws.request("s1", "gateway.query", slow.clone()).await;
    ws.request("s2", "gateway.query", slow).await;
    ws.request("s3", "gateway.fetch", fetch_one()).await;
    let v = ws.next_text().await;
    assert_frame_error(&v, Some("s3"), "too_many_in_flight");
    let mut done = [ws.next_text().await, ws.next_text().await];
    done.sort_by_key(|v| v["request_id"].as_str().unwrap().to_string());
    for (v, id) in done.iter().zip(["s1", "s2"]) {
        assert_eq!(v["request_id"], id, "{v}");
        assert_eq!(v["status"], "success", "{v}");
    }
    let v = ws.call("s4", "gateway.fetch", fetch_one()).await;
    assert_eq!(v["status"], "success", "{v}");
    ws.close().await;
}

#[actix_rt::test]
async fn a_silent_socket_is_closed_after_the_idle_timeout_and_a_live_one_is_not() {
    let db = TestDb::create(SEED).await;
    let srv = server(&db, "  ping_interval_ms: 50\n  idle_timeout_ms: 400\n").await;

    // Both are read at once: a client answers pings only while it reads its socket.
    let (mut live, _) = Ws::connect(&srv, &[]).await;
    let (mut silent, _) = Ws::connect(&srv, &[]).await;
    silent.answer_pings = false;
    let started = Instant::now();
    let silent_run = async {
        let event = silent.pump(Duration::from_secs(5)).await;
        (event, started.elapsed())
    };
    // The live client answers pings for well past the timeout.
    let ((closed, waited), heard) =
        futures_util::future::join(silent_run, live.pump(Duration::from_millis(1500))).await;
    // The silent one is closed with 1001.
    match closed {
        Some(Event::Close(Some(reason))) => {
            assert_eq!(reason.code, CloseCode::Away, "{reason:?}");
            assert_eq!(reason.description.as_deref(), Some("idle timeout"));
        }
        other => panic!("expected a close, got {other:?}"),
    }
    assert!(waited >= Duration::from_millis(350), "{waited:?}");
    assert!(heard.is_none(), "the live socket got {heard:?}");
    let v = live.call("alive", "gateway.fetch", fetch_one()).await;
    assert_eq!(v["status"], "success", "{v}");
    live.close().await;
}

#[actix_rt::test]
async fn a_plain_get_is_told_to_upgrade_and_wss_info_describes_the_protocol() {
    let db = TestDb::create(SEED).await;
    let srv = server(&db, "  max_in_flight: 7\n").await;
    let r = srv.http.get(srv.url("/wss/gateway")).send().await.unwrap();
    assert_error(&read(r).await, 426, "upgrade_required");
    let r = srv.http.post(srv.url("/wss/gateway")).send().await.unwrap();
    assert_error(&read(r).await, 405, "method_not_allowed");

    let (status, v) = read(srv.http.get(srv.url("/wss/info")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{v}");
    let d = &v["data"];
    assert_eq!(d["endpoint"], "/wss/gateway");
    assert_eq!(d["protocol"], "athena-gateway/1");
    assert_eq!(d["contract"], "/openapi-wss.yaml");
    let actions: Vec<&str> = d["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "gateway.fetch",
            "gateway.insert",
            "gateway.update",
            "gateway.delete",
            "gateway.query",
            "cdc.subscribe",
            "cdc.unsubscribe"
        ]
    );
    assert!(d["actions"][5]["http_route"].is_null(), "{v}");
    assert!(d["messages"]["change"].is_string(), "{v}");
    assert_eq!(d["limits"]["max_subscriptions"], 16, "{v}");
    assert_eq!(d["limits"]["max_in_flight"], 7, "{v}");
    assert!(d["close_codes"]["1009"].is_string(), "{v}");

    let r = srv
        .http
        .get(srv.url("/openapi-wss.yaml"))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("GatewayRequest") && !text.contains("not yet served"));
}

#[actix_rt::test]
async fn socket_requests_are_recorded_like_http_gateway_requests_and_counted_in_metrics() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&config_yaml(
        &db.uri,
        "",
        &format!(
            "logging:\n  uri: {}\nstats:\n  flush_interval_ms: 100\n",
            logging.uri
        ),
    ))
    .await;
    wait_logging_ready(&srv).await;
    let (mut ws, _) = Ws::connect(
        &srv,
        &[("User-Agent", "ws-test/1"), ("X-User-Id", "u-socket")],
    )
    .await;
    let ok = ws
        .call(
            "1",
            "gateway.fetch",
            json!({"table_name": "users", "limit": 2}),
        )
        .await;
    assert_eq!(ok["status"], "success", "{ok}");
    let missing = ws
        .call("2", "gateway.fetch", json!({"table_name": "nope"}))
        .await;
    assert_frame_error(&missing, Some("2"), "unknown_table");
    let inserted = ws
        .roundtrip(json!({"request_id": "3", "action": "gateway.insert", "client_name": "default",
                          "body": {"table_name": "users", "insert_body": {"email": "ws@example.com"}},
                          "headers": {"x-user-id": "u-message"}}))
        .await;
    assert_eq!(inserted["status"], "success", "{inserted}");
    let sql = ws
        .call("4", "gateway.query", json!({"query": "SELECT 1"}))
        .await;
    assert_frame_error(&sql, Some("4"), "missing_api_key");
    ws.close().await;
    srv.actors.stats.flush().await.unwrap();

    let c = logging.client().await;
    let rows = c
        .query(
            "SELECT r.request_id, r.method, r.path, r.status_code, r.client, r.user_id, r.user_agent, \
             o.operation, o.table_name, o.row_count \
             FROM gateway_request_log r LEFT JOIN gateway_operation_log o USING (request_id) \
             WHERE r.method = 'WS' ORDER BY r.id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {:?} {:?} {:?} {:?} {:?} {:?}",
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, i32>(3),
                r.get::<_, Option<String>>(4),
                r.get::<_, Option<String>>(5),
                r.get::<_, Option<String>>(6),
                r.get::<_, Option<String>>(7),
                r.get::<_, Option<String>>(8),
                r.try_get::<_, Option<i64>>(9).ok().flatten(),
            )
        })
        .collect();
    let ua = r#"Some("ws-test/1")"#;
    assert_eq!(
        got,
        vec![
            format!(
                r#"WS /wss/gateway/gateway.fetch 200 Some("default") Some("u-socket") {ua} Some("fetch") Some("users") Some(2)"#
            ),
            format!(
                r#"WS /wss/gateway/gateway.fetch 404 Some("default") Some("u-socket") {ua} Some("fetch") Some("nope") None"#
            ),
            format!(
                r#"WS /wss/gateway/gateway.insert 200 Some("default") Some("u-message") {ua} Some("insert") Some("users") Some(1)"#
            ),
            format!(
                r#"WS /wss/gateway/gateway.query 401 Some("default") Some("u-socket") {ua} Some("query") None None"#
            ),
        ],
        "{got:#?}"
    );
    // The error frame's trace id is the log row's request id.
    let trace = missing["trace_id"].as_str().unwrap();
    assert_eq!(rows[1].get::<_, String>(0), trace);

    // Socket requests are counted under their route with the method label `WS`.
    let text = read_metrics(&srv).await;
    for (route, status) in [
        ("/wss/gateway/gateway.fetch", 200),
        ("/wss/gateway/gateway.fetch", 404),
        ("/wss/gateway/gateway.insert", 200),
        ("/wss/gateway/gateway.query", 401),
    ] {
        let counted = text.lines().any(|l| {
            l.starts_with(&format!(
                "athena_http_requests_total{{route=\"{route}\",method=\"WS\","
            )) && l.contains(&format!("status=\"{status}\",client=\"default\"}} 1"))
        });
        assert!(counted, "{route} {status} is not counted in\n{text}");
    }
}

async fn read_metrics(srv: &TestServer) -> String {
    let r = srv
        .http
        .get(srv.url("/metrics"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}
