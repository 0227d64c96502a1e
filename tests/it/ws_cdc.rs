//! Change subscriptions over `/wss/gateway`, driven by a real WebSocket client (awc) against the
//! real PostgreSQL: writes through the HTTP gateway (and straight to the database) arrive at
//! socket subscribers as change frames; filters, several subscriptions per socket, unsubscribe,
//! resuming with `since_seq` after a disconnect and after a restart, a second instance taking
//! the reader over, denials, a revoked key, malformed messages, a socket that stops reading,
//! statistics, and `athena_rs cdc tail`.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::cdc::*;
use common::ws::{assert_frame_error, Event, Ws};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

#[actix_rt::test]
async fn inserts_updates_and_deletes_through_http_reach_a_socket_subscriber_with_their_shapes() {
    let env = CdcEnv::new().await;
    let srv = env.start().await;
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    let answer = ws
        .roundtrip(subscribe_msg("sub-1", json!({"table": "items"})))
        .await;
    assert_eq!(answer["request_id"], "sub-1", "{answer}");
    assert_eq!(answer["status"], "success", "{answer}");
    let d = &answer["data"];
    assert_eq!(
        (&d["client"], &d["table"]),
        (&json!("default"), &json!("items"))
    );
    let sid = d["subscription_id"].as_str().unwrap().to_string();
    let start = d["start_seq"].as_i64().unwrap();

    let (s, v) = srv
        .call(
            Method::PUT,
            "/gateway/insert",
            Some(json!({"table_name": "items", "insert_body": {
                "name": "apple", "qty": 3, "price": "1.50", "meta": {"k": [1, null]},
                "tags": ["red"]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = srv
        .post(
            "/gateway/update",
            json!({"table_name": "items", "update_body": {"qty": 4},
                   "conditions": [{"eq_column": "name", "eq_value": "apple"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = srv
        .post(
            "/gateway/delete",
            json!({"table_name": "items", "conditions": [{"eq_column": "name", "eq_value": "apple"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let f = changes(&mut ws, 3, WAIT).await;
    // Numbers keep their exact text (price 1.50), as in a fetch of the row.
    let row: Value = serde_json::from_str(
        r#"{"id": 1, "name": "apple", "qty": 3, "price": 1.50, "meta": {"k": [1, null]},
            "tags": ["red"], "note": null}"#,
    )
    .unwrap();
    let mut updated = row.clone();
    updated["qty"] = json!(4);
    for (frame, op) in f.iter().zip(["insert", "update", "delete"]) {
        assert_eq!(frame["type"], "change", "{frame}");
        assert_eq!(frame["subscription_id"], sid.as_str(), "{frame}");
        assert_eq!(frame["client"], "default", "{frame}");
        assert_eq!(frame["table"], "items", "{frame}");
        assert_eq!(frame["op"], op, "{frame}");
        let at = frame["committed_at"].as_str().unwrap();
        assert!(at.len() == 27 && at.ends_with('Z'), "{at}");
    }
    let seqs: Vec<i64> = f.iter().map(|v| v["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs[0] > start && seqs.windows(2).all(|w| w[0] < w[1]),
        "{seqs:?}"
    );
    assert_eq!(f[0]["row"], row);
    assert!(f[0].get("old").is_none(), "{}", f[0]);
    assert_eq!((&f[1]["row"], &f[1]["old"]), (&updated, &row));
    assert_eq!((&f[2]["row"], &f[2]["old"]), (&updated, &updated));
    let keys: Vec<&str> = f[1]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "type",
            "subscription_id",
            "seq",
            "client",
            "table",
            "op",
            "row",
            "old",
            "committed_at"
        ]
    );

    // Unsubscribed: nothing more comes, and the answer says where to resume.
    let v = ws
        .roundtrip(json!({"request_id": "u", "action": "cdc.unsubscribe", "subscription_id": sid}))
        .await;
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(v["data"]["last_seq"], json!(seqs[2]), "{v}");
    insert_http(&srv, &names("after", 1..=2)).await;
    assert_silent(&mut ws, Duration::from_millis(700)).await;
    let v = ws
        .roundtrip(json!({"request_id": "u2", "action": "cdc.unsubscribe", "subscription_id": sid}))
        .await;
    assert_frame_error(&v, Some("u2"), "unknown_subscription");
    assert_eq!(wait_subscribers(&srv, 0).await, 0);
}

/// Waits until the hub counts `n` subscribers; returns the count.
async fn wait_subscribers(srv: &TestServer, n: usize) -> usize {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = srv.actors.cdc.status().subscribers;
        if now == n || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn filters_pick_events_and_several_subscriptions_share_one_socket() {
    let env = CdcEnv::new().await;
    let srv = env.start().await;
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    let big = subscribe(
        &mut ws,
        "big",
        json!({"table": "items", "filter": [{"operator": "gte", "column": "qty", "value": 10}]}),
    )
    .await;
    let named = subscribe(
        &mut ws,
        "named",
        json!({"table_name": "items", "conditions": [{"eq_column": "name", "eq_value": "b"}]}),
    )
    .await;
    let others = subscribe(&mut ws, "o", json!({"table": "public.other_t"})).await;
    assert_eq!([&big, &named, &others], ["s1", "s2", "s3"]);
    for (name, qty) in [("a", 1), ("b", 20), ("c", 30), ("d", 2)] {
        let (s, v) = srv
            .call(
                Method::PUT,
                "/gateway/insert",
                Some(json!({"table_name": "items", "insert_body": {"name": name, "qty": qty}})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, v) = srv
        .call(
            Method::PUT,
            "/gateway/insert",
            Some(json!({"table_name": "other_t", "insert_body": {"id": 1, "label": "x"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let f = changes(&mut ws, 4, WAIT).await;
    let mut got: Vec<(String, String)> = f
        .iter()
        .map(|v| {
            let what = v["row"]["name"]
                .as_str()
                .or(v["row"]["label"].as_str())
                .unwrap();
            (
                v["subscription_id"].as_str().unwrap().to_string(),
                what.to_string(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> = [(&big, "b"), (&big, "c"), (&named, "b"), (&others, "x")]
        .iter()
        .map(|(s, n)| (s.to_string(), n.to_string()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        f.iter().find(|v| v["row"]["label"] == "x").unwrap()["table"],
        "other_t"
    );
    assert_silent(&mut ws, Duration::from_millis(500)).await;
    // Closing the socket ends its subscriptions in the hub.
    assert_eq!(srv.actors.cdc.status().subscribers, 3);
    ws.close().await;
    assert_eq!(wait_subscribers(&srv, 0).await, 0);
}

#[actix_rt::test]
async fn since_seq_resumes_after_a_disconnect_with_no_gap_and_no_duplicate() {
    let env = CdcEnv::new().await;
    let srv = env.start().await;
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    subscribe(&mut ws, "1", json!({"table": "items"})).await;
    insert_http(&srv, &names("a", 1..=10)).await;
    let first = changes(&mut ws, 4, WAIT).await;
    let last = first.last().unwrap()["seq"].as_i64().unwrap();
    // Gone without a close frame, with events still unread.
    drop(ws);
    insert_http(&srv, &names("b", 1..=10)).await;

    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    subscribe(&mut ws, "2", json!({"table": "items", "since_seq": last})).await;
    insert_http(&srv, &names("c", 1..=3)).await;
    let rest = changes(&mut ws, 19, WAIT).await;
    let mut got = row_names(&first);
    got.extend(row_names(&rest));
    let mut want = names("a", 1..=10);
    want.extend(names("b", 1..=10));
    want.extend(names("c", 1..=3));
    assert_eq!(got, want);
    assert_silent(&mut ws, Duration::from_millis(500)).await;
}

#[actix_rt::test]
async fn a_restart_mid_stream_loses_nothing_for_a_socket_that_resubscribes() {
    let env = CdcEnv::new().await;
    let srv = env.start().await;
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    subscribe(&mut ws, "1", json!({"table": "items"})).await;
    insert_http(&srv, &names("a", 1..=10)).await;
    let first = changes(&mut ws, 10, WAIT).await;
    let last = first.last().unwrap()["seq"].as_i64().unwrap();
    drop(srv);
    // The socket ends with the server: a closed frame, a close or the end of the stream.
    loop {
        match ws.next_event(WAIT).await {
            Event::Text(v) if v["type"] == "closed" => {
                assert_eq!(v["last_seq"], json!(last), "{v}");
            }
            Event::Text(v) => panic!("unexpected {v}"),
            Event::Close(_) | Event::End => break,
        }
    }
    // Written while no Athena runs: the slot keeps them.
    env.insert_direct(&names("b", 1..=10)).await;
    let srv = env.start().await;
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    subscribe(&mut ws, "2", json!({"table": "items", "since_seq": last})).await;
    insert_http(&srv, &names("c", 1..=5)).await;
    let rest = changes(&mut ws, 15, WAIT).await;
    let mut got = row_names(&first);
    got.extend(row_names(&rest));
    let mut want = names("a", 1..=10);
    want.extend(names("b", 1..=10));
    want.extend(names("c", 1..=5));
    assert_eq!(got, want);
    assert_silent(&mut ws, Duration::from_millis(300)).await;
}

#[actix_rt::test]
async fn a_socket_on_a_second_instance_loses_nothing_when_the_reading_instance_stops() {
    let env = CdcEnv::new().await;
    let a = env.start().await;
    let b = env.start_with("", "", "follower").await;
    let (mut ws, _) = Ws::connect(&b, &[]).await;
    subscribe(&mut ws, "1", json!({"table": "items"})).await;

    // Writes go on through B the whole time, one row per request.
    let total = 200;
    let (base, http) = (b.base.clone(), b.http.clone());
    let writer = tokio::spawn(async move {
        for n in names("w", 1..=total) {
            let r = http
                .put(format!("{base}/gateway/insert"))
                .header("X-Athena-Client", "default")
                .json(&json!({"table_name": "items", "insert_body": {"name": n}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let early = changes(&mut ws, 20, WAIT).await;
    let stopped = Instant::now();
    drop(a);
    let took = wait_role(&b, "default", "leader", Duration::from_secs(5)).await;
    eprintln!("B leads {:?} after A stopped", stopped.elapsed());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let rest = changes(&mut ws, total - 20, Duration::from_secs(30)).await;
    writer.await.unwrap();
    let mut got = row_names(&early);
    got.extend(row_names(&rest));
    assert_eq!(
        got,
        names("w", 1..=total),
        "every row once, in commit order"
    );
    assert_silent(&mut ws, Duration::from_millis(300)).await;
}

#[actix_rt::test]
async fn denied_subscriptions_answer_error_frames_and_the_socket_stays_open() {
    let env = CdcEnv::new().await;
    let srv = env
        .start_with("", "api_keys:\n  enforce: true\n", "leader")
        .await;
    let (reader, _) = create_key(
        &srv,
        json!({"name": "r", "rights": ["items.read", "plain.read"]}),
    )
    .await;
    let (writer, _) = create_key(&srv, json!({"name": "w", "rights": ["items.write"]})).await;
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    let cases = [
        (
            "nokey",
            None,
            json!({"table": "items"}),
            "default",
            401,
            "missing_api_key",
        ),
        (
            "badkey",
            Some("ath_nope.nope"),
            json!({"table": "items"}),
            "default",
            401,
            "invalid_api_key",
        ),
        (
            "noright",
            Some(writer.as_str()),
            json!({"table": "items"}),
            "default",
            403,
            "forbidden",
        ),
        (
            "ghost",
            Some(reader.as_str()),
            json!({"table": "items"}),
            "ghost",
            404,
            "unknown_client",
        ),
        (
            "plain",
            Some(reader.as_str()),
            json!({"table": "plain"}),
            "default",
            404,
            "cdc_not_captured",
        ),
        (
            "nope",
            Some(ADMIN_KEY),
            json!({"table": "nope"}),
            "default",
            404,
            "cdc_not_captured",
        ),
    ];
    for (id, key, body, client, status, code) in cases {
        let mut msg = json!({"request_id": id, "action": "cdc.subscribe", "client_name": client,
                             "body": body});
        if let Some(k) = key {
            msg["headers"] = json!({"authorization": format!("Bearer {k}")});
        }
        let v = ws.roundtrip(msg).await;
        assert_frame_error(&v, Some(id), code);
        assert_eq!(v["message"], error_summary(status), "{v}");
    }
    let v = ws
        .roundtrip(subscribe_msg(
            "nofilter",
            json!({"table": "items",
        "filter": [{"eq_column": "nope", "eq_value": 1}]}),
        ))
        .await;
    assert_frame_error(&v, Some("nofilter"), "missing_api_key");
    // The socket is still open: an auth message, then a subscription that is allowed.
    let v = ws
        .roundtrip(json!({"action": "auth", "key": reader, "request_id": "a"}))
        .await;
    assert_eq!(v["status"], "success", "{v}");
    let v = ws
        .roundtrip(subscribe_msg(
            "badcol",
            json!({"table": "items",
        "filter": [{"eq_column": "nope", "eq_value": 1}]}),
        ))
        .await;
    assert_frame_error(&v, Some("badcol"), "unknown_column");
    subscribe(&mut ws, "ok", json!({"table": "items"})).await;
    insert_http_with_key(&srv, ADMIN_KEY, "k1").await;
    let f = changes(&mut ws, 1, WAIT).await;
    assert_eq!(f[0]["row"]["name"], "k1");
}

#[actix_rt::test]
async fn a_subscription_ends_with_closed_when_its_key_is_revoked() {
    let env = CdcEnv::new().await;
    let srv = env
        .start_with(
            "",
            "api_keys:\n  enforce: true\nwebsocket:\n  ping_interval_ms: 100\n",
            "leader",
        )
        .await;
    let (key, record) = create_key(&srv, json!({"name": "r", "rights": ["items.read"]})).await;
    let bearer = format!("Bearer {key}");
    let (mut ws, _) = Ws::connect(&srv, &[("Authorization", bearer.as_str())]).await;
    let by_key = subscribe(&mut ws, "k", json!({"table": "items"})).await;
    let mut admin_msg = subscribe_msg("a", json!({"table": "items"}));
    admin_msg["headers"] = json!({"x-athena-key": ADMIN_KEY});
    let v = ws.roundtrip(admin_msg).await;
    let by_admin = v["data"]["subscription_id"].as_str().unwrap().to_string();
    insert_http_with_key(&srv, ADMIN_KEY, "before").await;
    let f = changes(&mut ws, 2, WAIT).await;
    assert!(f.iter().all(|v| v["row"]["name"] == "before"), "{f:?}");

    let id = record["id"].as_str().unwrap();
    let (s, v) = admin(&srv, Method::DELETE, &format!("/admin/api-keys/{id}"), None).await;
    assert_eq!(s, 200, "{v}");
    // The next heartbeat after the registry has the revocation ends that subscription only.
    let closed = match ws.next_event(WAIT).await {
        Event::Text(v) if v["type"] == "closed" => v,
        other => panic!("expected closed, got {other:?}"),
    };
    assert_eq!(closed["subscription_id"], by_key.as_str(), "{closed}");
    assert_eq!(closed["last_seq"], f[0]["seq"], "{closed}");
    let reason = closed["reason"].as_str().unwrap();
    assert!(reason.starts_with("access withdrawn"), "{reason}");
    assert_eq!(wait_subscribers(&srv, 1).await, 1);
    insert_http_with_key(&srv, ADMIN_KEY, "after").await;
    let f = changes(&mut ws, 1, WAIT).await;
    assert_eq!(f[0]["subscription_id"], by_admin.as_str(), "{}", f[0]);
    assert_eq!(f[0]["row"]["name"], "after");
}

fn error_summary(status: u16) -> &'static str {
    match status {
        401 => "Authentication required",
        403 => "Forbidden",
        404 => "Not found",
        _ => "?",
    }
}

async fn insert_http_with_key(srv: &TestServer, key: &str, name: &str) {
    let r = srv
        .http
        .put(srv.url("/gateway/insert"))
        .header("X-Athena-Client", "default")
        .bearer_auth(key)
        .json(&json!({"table_name": "items", "insert_body": {"name": name}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[actix_rt::test]
async fn malformed_subscribe_messages_are_refused_and_the_socket_stays_open() {
    let env = CdcEnv::new().await;
    let srv = env
        .start_with("", "websocket:\n  max_subscriptions: 2\n", "leader")
        .await;
    let (mut ws, _) = Ws::connect(&srv, &[]).await;
    let sub = |id: &str, body: Value| subscribe_msg(id, body);
    let cases: Vec<(Value, Option<&str>, &str)> = vec![
        (
            json!({"action": "cdc.subscribe", "client_name": "default", "body": {"table": "items"}}),
            None,
            "missing_field",
        ),
        (
            json!({"request_id": "1", "action": "cdc.subscribe", "body": {"table": "items"}}),
            Some("1"),
            "missing_field",
        ),
        (
            json!({"request_id": "2", "action": "cdc.subscribe", "client_name": "default"}),
            Some("2"),
            "missing_field",
        ),
        (
            json!({"request_id": "3", "action": "cdc.subscribe", "client_name": "default", "body": ["items"]}),
            Some("3"),
            "invalid_field",
        ),
        (sub("4", json!({})), Some("4"), "missing_field"),
        (
            sub("5", json!({"table": "a.b.c"})),
            Some("5"),
            "invalid_field",
        ),
        (
            sub("6", json!({"table": "items", "since_seq": -1})),
            Some("6"),
            "invalid_field",
        ),
        (
            sub("7", json!({"table": "items", "since_seq": "3"})),
            Some("7"),
            "invalid_field",
        ),
        (
            sub(
                "8",
                json!({"table": "items", "filter": [{"operator": "nope", "column": "qty", "value": 1}]}),
            ),
            Some("8"),
            "invalid_filter",
        ),
        (
            sub("9", json!({"table": "items", "filter": "qty"})),
            Some("9"),
            "invalid_field",
        ),
        (
            json!({"request_id": "10", "action": "cdc.unsubscribe"}),
            Some("10"),
            "missing_field",
        ),
        (
            json!({"request_id": "11", "action": "cdc.unsubscribe", "subscription_id": 1}),
            Some("11"),
            "invalid_field",
        ),
        (
            json!({"request_id": "12", "action": "cdc.unsubscribe", "subscription_id": "s9"}),
            Some("12"),
            "unknown_subscription",
        ),
        (
            json!({"request_id": "13", "action": "cdc.subscrib", "client_name": "default", "body": {}}),
            Some("13"),
            "unknown_action",
        ),
    ];
    for (msg, id, code) in cases {
        let v = ws.roundtrip(msg.clone()).await;
        assert_frame_error(&v, id, code);
        assert!(v["message"].is_string(), "{msg}: {v}");
    }
    // Over the bound.
    let first = subscribe(&mut ws, "a", json!({"table": "items"})).await;
    subscribe(&mut ws, "b", json!({"table": "items"})).await;
    let v = ws.roundtrip(sub("c", json!({"table": "items"}))).await;
    assert_frame_error(&v, Some("c"), "too_many_subscriptions");
    let v = ws
        .roundtrip(
            json!({"request_id": "u", "action": "cdc.unsubscribe", "subscription_id": first}),
        )
        .await;
    assert_eq!(v["status"], "success", "{v}");
    subscribe(&mut ws, "d", json!({"table": "items"})).await;
    // Requests still run on the socket.
    let v = ws
        .call("f", "gateway.fetch", json!({"table_name": "items"}))
        .await;
    assert_eq!(v["status"], "success", "{v}");
}

/// Rows of about 64 KiB each, `per_tx` to a transaction, straight to the database, a transaction
/// every 40 ms: a reading socket keeps up even on a loaded machine, and a socket that does not
/// read falls behind whatever the pace.
async fn insert_big(env: &CdcEnv, from: usize, to: usize, per_tx: usize) {
    let db = env.db.client().await;
    let mut i = from;
    while i <= to {
        let last = (i + per_tx - 1).min(to);
        db.execute(
            "INSERT INTO items (name, note) SELECT 'big' || lpad(g::text, 4, '0'), \
             repeat(md5(g::text), 2048) FROM generate_series($1::int, $2::int) g",
            &[&(i as i32), &(last as i32)],
        )
        .await
        .expect("insert");
        i = last + 1;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

#[actix_rt::test]
async fn a_socket_that_stops_reading_is_lagged_while_a_socket_that_reads_gets_everything() {
    let env = CdcEnv::new().await;
    let srv = env
        .start_with("  subscriber_buffer: 32\n", "", "leader")
        .await;
    let (mut fast, _) = Ws::connect(&srv, &[]).await;
    let (mut slow, _) = Ws::connect(&srv, &[]).await;
    let cols = json!({"table": "items"});
    let fast_id = subscribe(&mut fast, "f", cols.clone()).await;
    let slow_id = subscribe(&mut slow, "s", cols).await;
    let total = 240;
    // About 15 MiB of events: more than the kernel buffers between the server and a client that
    // does not read, so the slow session stops taking events and its hub buffer fills.
    let write = insert_big(&env, 1, total, 4);
    let read = async {
        let mut got = Vec::new();
        while got.len() < total {
            match fast.next_event(Duration::from_secs(60)).await {
                Event::Text(v) if v["type"] == "change" => {
                    assert_eq!(v["subscription_id"], fast_id.as_str());
                    got.push(v["row"]["name"].as_str().unwrap().to_string());
                }
                other => panic!(
                    "the reading socket got {other:?} after {} changes",
                    got.len()
                ),
            }
        }
        got
    };
    let ((), got) = tokio::join!(write, read);
    let want: Vec<String> = (1..=total).map(|i| format!("big{i:04}")).collect();
    assert_eq!(got, want, "the reading socket got every change in order");
    // The hub dropped the silent socket's subscription instead of queueing for it.
    let deadline = Instant::now() + WAIT;
    while srv
        .actors
        .cdc
        .shared
        .counters
        .lagged
        .load(Ordering::Relaxed)
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the silent socket was never lagged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(wait_subscribers(&srv, 1).await, 1);

    // Reading again: what was written before the lag, then `lagged`, and a resubscription with
    // since_seq continues with no gap and no duplicate.
    let mut seen = Vec::new();
    let last_seq = loop {
        match slow.next_event(WAIT).await {
            Event::Text(v) if v["type"] == "change" => {
                seen.push(v["row"]["name"].as_str().unwrap().to_string())
            }
            Event::Text(v) if v["type"] == "lagged" => {
                assert_eq!(v["subscription_id"], slow_id.as_str(), "{v}");
                break v["last_seq"].as_i64().unwrap();
            }
            other => panic!("expected changes then lagged, got {other:?}"),
        }
    };
    eprintln!(
        "the silent socket was lagged after {} of {total} changes",
        seen.len()
    );
    assert!(seen.len() < total, "lagged after {} changes", seen.len());
    assert_eq!(seen, want[..seen.len()]);
    subscribe(
        &mut slow,
        "again",
        json!({"table": "items", "since_seq": last_seq}),
    )
    .await;
    let rest = changes(&mut slow, total - seen.len(), Duration::from_secs(60)).await;
    seen.extend(row_names(&rest));
    assert_eq!(seen, want);
}

#[actix_rt::test]
async fn subscriptions_are_recorded_like_socket_requests() {
    let env = CdcEnv::new().await;
    let srv = env
        .start_with("", "stats:\n  flush_interval_ms: 100\n", "leader")
        .await;
    let (mut ws, _) = Ws::connect(&srv, &[("X-User-Id", "u-cdc")]).await;
    let sid = subscribe(&mut ws, "1", json!({"table": "items"})).await;
    let v = ws
        .roundtrip(subscribe_msg("2", json!({"table": "plain"})))
        .await;
    assert_frame_error(&v, Some("2"), "cdc_not_captured");
    let trace = v["trace_id"].as_str().unwrap().to_string();
    let v = ws
        .roundtrip(json!({"request_id": "3", "action": "cdc.unsubscribe", "subscription_id": sid}))
        .await;
    assert_eq!(v["status"], "success", "{v}");
    ws.close().await;
    srv.actors.stats.flush().await.unwrap();
    let c = env.log.client().await;
    let rows = c
        .query(
            "SELECT r.request_id, r.method || ' ' || r.path || ' ' || r.status_code || ' ' || \
             coalesce(r.client, '-') || ' ' || coalesce(r.user_id, '-') || ' ' || \
             coalesce(o.operation, '-') || ' ' || coalesce(o.table_name, '-') \
             FROM gateway_request_log r LEFT JOIN gateway_operation_log o USING (request_id) \
             WHERE r.method = 'WS' ORDER BY r.id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
    assert_eq!(
        got,
        [
            "WS /wss/gateway/cdc.subscribe 200 default u-cdc subscribe items",
            "WS /wss/gateway/cdc.subscribe 404 default u-cdc subscribe plain",
            "WS /wss/gateway/cdc.unsubscribe 200 default u-cdc - -",
        ]
    );
    assert_eq!(rows[1].get::<_, String>(0), trace);
    let text = srv
        .http
        .get(srv.url("/metrics"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.lines().any(|l| l.starts_with(
            "athena_http_requests_total{route=\"/wss/gateway/cdc.subscribe\",method=\"WS\","
        ) && l.contains("status=\"200\"")),
        "{text}"
    );
}

/// `athena_rs cdc tail`, the built binary, against a running server.
fn tail(srv: &TestServer, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_athena_rs"))
        .args(["cdc", "tail", "--url", &srv.base])
        .args(args)
        .env_remove("ATHENA_API_KEY")
        .env_remove("ATHENA_KEY_12")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

#[actix_rt::test]
async fn cdc_tail_prints_each_change_as_a_json_line() {
    let env = CdcEnv::new().await;
    let srv = env.start().await;
    insert_http(&srv, &names("old", 1..=3)).await;
    let head = loop {
        let s = srv.actors.cdc.status();
        let h = s.clients[0].head_seq.unwrap_or(0);
        if h >= 3 {
            break h;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut child = tail(
        &srv,
        &[
            "--client",
            "default",
            "--table",
            "items",
            "--since",
            &(head - 1).to_string(),
            "--filter",
            r#"[{"operator":"neq","column":"name","value":"skip"}]"#,
        ],
    );
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // Wait until it is subscribed: the replayed change comes first.
    let first = rx.recv_timeout(WAIT).expect("a first line");
    insert_http(&srv, &["skip".to_string(), "new1".to_string()]).await;
    let second = rx.recv_timeout(WAIT).expect("a second line");
    child.kill().unwrap();
    let _ = child.wait();
    let lines: Vec<Value> = [first, second]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines[0]["row"]["name"], "old0003", "{}", lines[0]);
    assert_eq!(lines[1]["row"]["name"], "new1", "{}", lines[1]);
    for l in &lines {
        assert_eq!(
            (&l["type"], &l["table"], &l["op"]),
            (&json!("change"), &json!("items"), &json!("insert"))
        );
        assert!(l.get("subscription_id").is_none(), "{l}");
    }

    // Errors go to stderr with a non-zero exit code.
    let out = tail(&srv, &["--client", "default", "--table", "plain"])
        .wait_with_output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cdc_not_captured"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_athena_rs"))
        .args([
            "cdc",
            "tail",
            "--client",
            "default",
            "--table",
            "items",
            "--url",
            "http://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot connect"),
        "{out:?}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_athena_rs"))
        .args(["cdc", "tail", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--client", "--table", "--since", "--filter", "--url", "--key", "Example",
    ] {
        assert!(help.contains(flag), "{flag} is not explained:\n{help}");
    }
}
