//! `openapi-wss.yaml` describes what the socket really says: a session exercising every kind of
//! message is captured from a real socket, and each message is validated against the schema of
//! its role with python-jsonschema (installed with openapi-spec-validator by scripts/test.sh).
//! Altered copies of real messages must fail, so the check cannot pass vacuously.

use crate::common;

use std::process::Command;
use std::time::Duration;

use awc::ws::Message;
use bytes::Bytes;
use common::ws::{assert_frame_error, Ws};
use common::*;
use serde_json::{json, Value};

const VALIDATOR: &str = r##"
import json, sys
from jsonschema import Draft202012Validator
from openapi_spec_validator.readers import read_from_filename
doc = read_from_filename("openapi-wss.yaml")[0]
failures = []
for i, case in enumerate(json.load(open(sys.argv[1]))):
    schema = dict(doc)
    schema["$ref"] = "#/components/schemas/" + case["schema"]
    v = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [e.message for e in v.iter_errors(case["instance"])]
    if bool(errors) == case["valid"]:
        failures.append({"case": i, "schema": case["schema"], "expected_valid": case["valid"],
                         "errors": errors[:3], "instance": case["instance"]})
print(json.dumps(failures, indent=1))
sys.exit(1 if failures else 0)
"##;

/// Validates `(schema, instance, valid)` cases with python-jsonschema.
fn validate(cases: &[(String, Value, bool)]) {
    let file = std::env::temp_dir().join(format!("athena_wss_{}.json", unique_name("c")));
    let list: Vec<Value> = cases
        .iter()
        .map(|(s, i, valid)| json!({"schema": s, "instance": i, "valid": valid}))
        .collect();
    std::fs::write(&file, serde_json::to_vec(&list).unwrap()).unwrap();
    let out = Command::new("python3")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("-c")
        .arg(VALIDATOR)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("python3 could not be started ({e}); run scripts/test.sh"));
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "messages that do not match openapi-wss.yaml (install its validator with scripts/test.sh):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[actix_rt::test]
async fn real_socket_traffic_matches_the_schemas_of_openapi_wss_yaml() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start_yaml(&config_yaml(
        &db.uri,
        "",
        "websocket:\n  max_in_flight: 2\n  max_frame_bytes: 4096\ncache:\n  enabled: true\n",
    ))
    .await;
    let mut cases: Vec<(String, Value, bool)> = Vec::new();
    let mut role = |schema: &str, v: &Value| cases.push((schema.to_string(), v.clone(), true));

    let (mut ws, ack) = Ws::connect(&srv, &[]).await;
    role("ConnectAck", &ack);
    let auth = json!({"action": "auth", "key": ADMIN_KEY, "request_id": "a"});
    role("AuthRequest", &auth);
    role("AuthAck", &ws.roundtrip(auth).await);
    // Malformed: refused whether or not the keys are loaded (this server has no key store).
    let bad_auth = json!({"action": "auth", "key": "not-a-key"});
    let v = ws.roundtrip(bad_auth.clone()).await;
    assert_frame_error(&v, None, "invalid_api_key");
    role("GatewayError", &v);

    let fetch = json!({"table_name": "users", "columns": ["id", "email", "name"],
                       "conditions": [{"operator": "gte", "column": "age", "value": 25}],
                       "count": "exact", "limit": 3});
    let post = json!({"table_name": "users", "group_by": "status",
                      "aggregation_column": "score", "aggregation_strategy": "sum"});
    let requests = [
        ("1", "gateway.fetch", fetch.clone(), None),
        ("2", "gateway.fetch", fetch, None),
        ("3", "gateway.fetch", post, None),
        (
            "4",
            "gateway.insert",
            json!({"table_name": "users", "insert_body": {"email": "c@example.com"}}),
            None,
        ),
        (
            "5",
            "gateway.update",
            json!({"table_name": "users", "set": {"name": "C"}, "conditions": [{"eq_column": "email", "eq_value": "c@example.com"}]}),
            None,
        ),
        (
            "6",
            "gateway.delete",
            json!({"table_name": "users", "conditions": [{"eq_column": "email", "eq_value": "c@example.com"}]}),
            None,
        ),
        (
            "7",
            "gateway.query",
            json!({"query": "SELECT $1::int AS n", "params": [5]}),
            None,
        ),
        (
            "8",
            "gateway.fetch",
            json!({"table_name": "nope"}),
            Some("unknown_table"),
        ),
        (
            "9",
            "gateway.delete",
            json!({"table_name": "users"}),
            Some("missing_filter"),
        ),
        (
            "10",
            "gateway.insert",
            json!({"table_name": "users", "insert_body": {"email": "ada@example.com"}}),
            Some("unique_violation"),
        ),
    ];
    for (id, action, body, error) in requests {
        let msg = json!({"request_id": id, "action": action, "client_name": "default", "body": body,
                         "headers": {"x-strip-nulls": "true", "x-user-id": "contract"}});
        role("GatewayRequest", &msg);
        role("ClientMessage", &msg);
        let v = ws.roundtrip(msg).await;
        assert_eq!(v["request_id"], id, "{v}");
        match error {
            Some(code) => assert_frame_error(&v, Some(id), code),
            None => assert_eq!(v["status"], "success", "{v}"),
        }
        role("GatewayResponse", &v);
    }
    // Malformed and binary messages.
    for text in ["{", "[]", r#"{"request_id":"m","action":"gateway.nope"}"#] {
        ws.send_text(text).await;
        role("GatewayError", &ws.next_text().await);
    }
    ws.send_raw(Message::Binary(Bytes::from_static(b"\x00")))
        .await;
    role("GatewayError", &ws.next_text().await);
    // Over the in-flight limit.
    let slow = json!({"query": "SELECT pg_sleep(0.3) IS NULL AS slept"});
    for id in ["s1", "s2", "s3"] {
        ws.request(id, "gateway.query", slow.clone()).await;
    }
    for _ in 0..3 {
        role("GatewayResponse", &ws.next_text().await);
    }
    // Over the frame limit: the error frame before the 1009 close.
    ws.send_text(&"x".repeat(5000)).await;
    let v = ws.next_text().await;
    assert_frame_error(&v, None, "payload_too_large");
    role("GatewayError", &v);

    for v in ws.received.clone() {
        role("ServerMessage", &v);
    }
    let codes: Vec<&str> = ws
        .received
        .iter()
        .filter_map(|v| v["code"].as_str())
        .collect();
    for code in [
        "invalid_api_key",
        "invalid_json",
        "invalid_body",
        "unknown_action",
        "unsupported_frame",
        "too_many_in_flight",
        "payload_too_large",
    ] {
        assert!(codes.contains(&code), "{code} was not exercised: {codes:?}");
    }
    assert!(
        ws.received.iter().any(|v| v["cache"] == "hit"),
        "no cache hit was exercised"
    );
    assert!(ws
        .received
        .iter()
        .any(|v| v["data"]["post_processing"].is_object()));

    // Negative controls: real messages, altered.
    let success = ws
        .received
        .iter()
        .find(|v| v["cache"] == "miss")
        .unwrap()
        .clone();
    let mut no_id = success.clone();
    no_id.as_object_mut().unwrap().remove("request_id");
    let mut odd_code = v.clone();
    odd_code["code"] = json!("made_up");
    let mut other_protocol = ack.clone();
    other_protocol["data"]["protocol"] = json!("athena-gateway/0");
    let mut extra = success.clone();
    extra["surprise"] = json!(1);
    for (schema, instance) in [
        ("GatewaySuccess", no_id),
        ("GatewayError", odd_code),
        ("ConnectAck", other_protocol),
        ("GatewayResponse", extra),
        (
            "GatewayRequest",
            json!({"request_id": "1", "action": "gateway.drop", "client_name": "d", "body": {}}),
        ),
        ("AuthRequest", json!({"action": "auth"})),
    ] {
        cases.push((schema.to_string(), instance, false));
    }
    validate(&cases);
}

/// Change subscriptions: the messages of `cdc.subscribe` and `cdc.unsubscribe`, their answers,
/// and real change, lagged and closed frames, each validated against its schema.
#[actix_rt::test]
async fn real_subscription_traffic_matches_the_schemas_of_openapi_wss_yaml() {
    use common::cdc::*;

    let env = CdcEnv::new().await;
    let srv = env
        .start_with(
            "  subscriber_buffer: 4\n",
            "websocket:\n  max_subscriptions: 2\n",
            "leader",
        )
        .await;
    let mut cases: Vec<(String, Value, bool)> = Vec::new();
    let mut role = |schema: &str, v: &Value| cases.push((schema.to_string(), v.clone(), true));
    let (mut ws, ack) = Ws::connect(&srv, &[]).await;
    role("ConnectAck", &ack);

    // A subscription with every member, and its changes.
    let msg = json!({"request_id": "s", "action": "cdc.subscribe", "client_name": "default",
                     "body": {"table": "items", "since_seq": 0,
                              "filter": [{"operator": "neq", "column": "name", "value": "x"}]},
                     "headers": {"x-user-id": "contract"}});
    role("SubscribeRequest", &msg);
    role("ClientMessage", &msg);
    let answer = ws.roundtrip(msg).await;
    role("SubscribeResponse", &answer);
    let sid = answer["data"]["subscription_id"]
        .as_str()
        .unwrap()
        .to_string();
    insert_http(&srv, &names("a", 1..=1)).await;
    let (s, v) = srv
        .post(
            "/gateway/update",
            json!({"table_name": "items", "update_body": {"qty": 2},
                   "conditions": [{"eq_column": "name", "eq_value": "a0001"}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = srv
        .post(
            "/gateway/delete",
            json!({"table_name": "items", "conditions": [{"eq_column": "name", "eq_value": "a0001"}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let frames = changes(&mut ws, 3, Duration::from_secs(15)).await;
    for f in &frames {
        role("ChangeEvent", f);
        role("SubscriptionEvent", f);
    }
    let unsub = json!({"request_id": "u", "action": "cdc.unsubscribe", "subscription_id": sid});
    role("UnsubscribeRequest", &unsub);
    role("ClientMessage", &unsub);
    role("UnsubscribeResponse", &ws.roundtrip(unsub).await);

    // Refusals.
    for (msg, code) in [
        (
            json!({"request_id": "n", "action": "cdc.subscribe", "client_name": "default",
                   "body": {"table": "plain"}}),
            "cdc_not_captured",
        ),
        (
            json!({"request_id": "m", "action": "cdc.subscribe", "client_name": "default",
                   "body": {"table": "items", "since_seq": -1}}),
            "invalid_field",
        ),
        (
            json!({"request_id": "x", "action": "cdc.unsubscribe", "subscription_id": "nope"}),
            "unknown_subscription",
        ),
    ] {
        let v = ws.roundtrip(msg).await;
        assert_frame_error(&v, v["request_id"].as_str(), code);
        role("GatewayError", &v);
    }

    // A table captured through the admin API, then released: its subscription is closed.
    let (s, v) = admin(
        &srv,
        reqwest::Method::POST,
        "/admin/cdc/tables",
        Some(json!({"client_name": "default", "table": "plain"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let plain = subscribe(&mut ws, "p", json!({"table": "plain"})).await;
    // A burst of a hundred changes in one transaction overflows a buffer of four: lagged.
    let burst = subscribe(&mut ws, "b", json!({"table": "items"})).await;
    let v = ws
        .roundtrip(json!({"request_id": "over", "action": "cdc.subscribe",
                          "client_name": "default", "body": {"table": "items"}}))
        .await;
    assert_frame_error(&v, Some("over"), "too_many_subscriptions");
    role("SubscribeResponse", &v);
    insert_http(&srv, &names("burst", 1..=100)).await;
    let (s, v) = admin(
        &srv,
        reqwest::Method::DELETE,
        "/admin/cdc/tables/default/plain",
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let mut ends = Vec::new();
    while ends.len() < 2 {
        let v = ws.next_text().await;
        match v["type"].as_str() {
            Some("change") => role("ChangeEvent", &v),
            Some("lagged") => {
                assert_eq!(v["subscription_id"], burst.as_str(), "{v}");
                ends.push(v);
            }
            Some("closed") => {
                assert_eq!(v["subscription_id"], plain.as_str(), "{v}");
                ends.push(v);
            }
            _ => panic!("unexpected {v}"),
        }
    }
    ends.sort_by_key(|v| v["type"].as_str().unwrap().to_string());
    role("ClosedEvent", &ends[0]);
    role("LaggedEvent", &ends[1]);
    for v in &ends {
        role("SubscriptionEvent", v);
    }
    for v in ws.received.clone() {
        role("ServerMessage", &v);
    }

    // Negative controls: real messages, altered.
    let mut no_id = frames[0].clone();
    no_id.as_object_mut().unwrap().remove("subscription_id");
    let mut bad_op = frames[0].clone();
    bad_op["op"] = json!("upsert");
    let mut extra = ends[1].clone();
    extra["surprise"] = json!(1);
    let mut no_start = answer.clone();
    no_start["data"]
        .as_object_mut()
        .unwrap()
        .remove("start_seq");
    let mut no_reason = ends[0].clone();
    no_reason.as_object_mut().unwrap().remove("reason");
    for (schema, instance) in [
        ("ChangeEvent", no_id),
        ("ChangeEvent", bad_op),
        ("LaggedEvent", extra),
        ("SubscribeAck", no_start),
        ("ClosedEvent", no_reason),
        (
            "SubscribeRequest",
            json!({"request_id": "1", "action": "cdc.subscribe", "client_name": "d", "body": "t"}),
        ),
        (
            "UnsubscribeRequest",
            json!({"request_id": "1", "action": "cdc.unsubscribe"}),
        ),
    ] {
        cases.push((schema.to_string(), instance, false));
    }
    validate(&cases);
}
